"""What ``inference.neighbours.match_test_density`` changes out of fold, on a finished chain.

Not a speed benchmark: an out-of-fold measurement. For each model kind of a finished run
of ENV (its fold models, validation predictions and test neighbours on disk), the held-out
images' neighbours are searched twice, among the share of them spaced as the test images
(the default) and among all of them, and the smoothing is chosen on each, as the chain's
``smooth_out_of_fold`` does. Prints one CSV row per kind and setting; nothing is written.

    python benchmarks/oof_density_matching.py [--env real80x60] [--kinds baseline pseudo]
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from statefarm.pipelines.cross_validation.nodes import collect_out_of_fold, smooth_out_of_fold
from statefarm.pipelines.inference.nodes import find_valid_neighbours


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="real80x60")
    parser.add_argument("--kinds", nargs="+", default=["baseline", "pseudo"])
    args = parser.parse_args()
    bootstrap_project(Path.cwd())
    columns = ["kind", "match_test_density", "neighbours", "weight", "weighting", "log_loss_before", "log_loss_after"]
    out = csv.DictWriter(sys.stdout, columns, extrasaction="ignore")
    out.writeheader()
    with KedroSession.create(project_path=Path.cwd(), env=args.env) as session:
        catalog = session.load_context().catalog
        folds = catalog.load("driver_folds")["folds"]
        inference, where, seed = (catalog.load(f"params:{group}") for group in ("inference", "runtime", "seed"))
        cache, index, driver_folds = (catalog.load(name) for name in ("image_cache", "image_index", "driver_folds"))
        splits = [catalog.load(f"fold_{k}.driver_split") for k in folds]
        for kind in args.kinds:
            valid = [catalog.load(f"{kind}.fold_{k}.valid_predictions") for k in folds]
            oof, _ = collect_out_of_fold(index, driver_folds, inference, *valid, *splits, folds=folds)
            for match in (True, False):
                search = inference.neighbours.model_copy(update={"match_test_density": match})
                params = inference.model_copy(update={"neighbours": search})
                tables = [
                    find_valid_neighbours(
                        catalog.load(f"{kind}.fold_{k}.model"),
                        cache,
                        valid[k],
                        catalog.load(f"{kind}.fold_{k}.test_neighbours"),
                        params,
                        where,
                        seed,
                    )  # fmt: skip
                    for k in folds
                ]
                _, choice, _, _ = smooth_out_of_fold(oof, params, *tables, folds=folds)
                out.writerow({"kind": kind, "match_test_density": match, **choice})
                sys.stdout.flush()


if __name__ == "__main__":
    main()
