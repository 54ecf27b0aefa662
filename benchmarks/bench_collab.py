"""Collaborative filtering speed: our torch models against scikit-surprise's SVD, in one run.

Trains each model of ``conf/base/parameters_collab.yml`` on the seeded random 80/20 split
of MovieLens (the shared ml-latest-small when present, else a generated table of the
same size) and prints, per model: epochs/s, seconds per epoch, the held-out RMSE after
each epoch's best and where it came, the time to reach it, and the ratio of that time
to surprise's SVD fit. The held-out RMSE here is for speed, not selection: the
pipeline's comparison never picks epochs on held-out ratings.

    python benchmarks/bench_collab.py [--ratings PATH/ratings.csv] [--epochs 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from statefarm.collab.models import EncodedRatings, rmse
from statefarm.collab.ratings import check_ratings, split_ratings
from statefarm.pipelines.collab.nodes import CollabConfig, svd_predictions, train_model

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "ml-latest-small" / "ratings.csv"


def _ratings(path: Path) -> tuple[pd.DataFrame, str]:
    if path.is_file():
        return check_ratings(pd.read_csv(path)), str(path)
    sys.path.insert(0, str(REPO))
    from tests.collab.test_collab import planted_ratings

    return check_ratings(planted_ratings(users=610, movies=9000, rank=8, share=0.0184)), "generated (planted rank 8)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ratings", type=Path, default=SHARED)
    parser.add_argument("--epochs", type=int, default=None, help="default: conf/base's")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    parameters = yaml.safe_load((REPO / "conf" / "base" / "parameters_collab.yml").read_text())["collab"]
    if args.epochs:
        parameters["training"]["epochs"] = args.epochs
    config = CollabConfig(**parameters)
    ratings, source = _ratings(args.ratings)
    train, valid = split_ratings(ratings, "random", config.valid_fraction, seed=42)
    print(f"ratings: {source}; {len(train)} to train on, {len(valid)} held out; {args.threads} threads\n")

    start = time.perf_counter()
    svd_rmse = rmse(svd_predictions(config.svd, train, valid, seed=42), valid["rating"].to_numpy())
    svd_seconds = time.perf_counter() - start

    rows, data = [], EncodedRatings.encode(train, valid)
    for name in config.models:
        _, history = train_model(config, name, data, seed=42, prefix="")
        per_epoch = history["seconds"].diff().fillna(history["seconds"].iloc[0])
        best = history["valid_rmse"].idxmin()
        rows.append(
            {
                "model": name,
                "epochs/s": 1 / per_epoch.median(),
                "s/epoch": per_epoch.median(),
                "best rmse": history["valid_rmse"].iloc[best],
                "at epoch": best + 1,
                "s to best": history["seconds"].iloc[best],
                "vs svd fit": history["seconds"].iloc[best] / svd_seconds,
            }
        )
    mean_rmse = rmse(np.full(len(valid), train["rating"].mean()), valid["rating"].to_numpy())
    rows.append({"model": "surprise_svd", "epochs/s": config.svd.n_epochs / svd_seconds,
                 "s/epoch": svd_seconds / config.svd.n_epochs, "best rmse": svd_rmse,
                 "at epoch": config.svd.n_epochs, "s to best": svd_seconds, "vs svd fit": 1.0})  # fmt: skip
    print(pd.DataFrame(rows).to_string(index=False, float_format="%.3f"))
    print(f"\nglobal mean: RMSE {mean_rmse:.3f}; target: one epoch well under 1 s")


if __name__ == "__main__":
    main()
