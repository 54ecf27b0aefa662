"""The real competition's shape, rehearsed: time, peak memory and disk per stage with conf/base's data settings.

Kaggle's State Farm data is 22,424 labelled JPEGs of 26 drivers and 79,726 test JPEGs,
all 640x480, which conf/base caches at 240x320. This script generates that shape with
the demo generator (``--scale 1`` is the real counts; the stand-in images say nothing about
scores), then runs, each stage in a fresh process so that its peak memory is its own:

  data_prep    index, decode and cache every image (conf/base's image_cache, every core)
  sampling     driver folds, each fold's split and the tuning sample (conf/base's split, sample)
  predict      the small CNN predicts every test image, with its features (conf/base's inference)
  neighbours   each test image's nearest test images in those features (conf/base's search)
  submission   Kaggle's CSV, validated, one row per test image

and prints a table: seconds, peak resident memory, and what the stage left on disk.

    python benchmarks/rehearse_full_size.py [--scale 1.0] [--workdir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from statefarm.data.demo_data import DemoDataConfig, generate_demo_dataset
from statefarm.data.layout import CLASS_NAMES

CONF = Path(__file__).resolve().parents[1] / "conf" / "base"
TRAIN_DRIVERS, TRAIN_IMAGES, TEST_IMAGES = 26, 22_424, 79_726
TEST_DRIVERS = 60  # Kaggle does not say; its test images are of other drivers than the train ones


def _parameters() -> dict:
    parameters = {}
    for path in sorted(CONF.glob("parameters*.yml")):
        parameters |= yaml.safe_load(path.read_text()) or {}
    return parameters


def _shape(scale: float) -> DemoDataConfig:
    per_class = TRAIN_DRIVERS * len(CLASS_NAMES)
    test_per_class = TEST_DRIVERS * len(CLASS_NAMES)
    return DemoDataConfig(
        train_drivers=TRAIN_DRIVERS,
        test_drivers=TEST_DRIVERS,
        images_per_driver_class=max(1, round(scale * TRAIN_IMAGES / per_class)),
        test_images_per_driver_class=max(1, round(scale * TEST_IMAGES / test_per_class)),
        image_size=(480, 640),
    )


def _save(items: list[tuple[str, object]], root: str) -> None:
    for key, draw in items:
        path = Path(root, "imgs", f"{key}.jpg")
        path.parent.mkdir(parents=True, exist_ok=True)
        draw().save(path, quality=90)


def generate(raw: Path, scale: float, seed: int) -> None:
    images, driver_list, sample_submission = generate_demo_dataset(_shape(scale), seed)
    raw.mkdir(parents=True)
    driver_list.to_csv(raw / "driver_imgs_list.csv", index=False)
    sample_submission.to_csv(raw / "sample_submission.csv", index=False)
    items = list(images.items())
    chunks = [items[start : start + 256] for start in range(0, len(items), 256)]
    with multiprocessing.get_context("spawn").Pool(os.cpu_count()) as pool:
        pool.starmap(_save, [(chunk, str(raw)) for chunk in chunks])


def _catalog(raw: Path, work: Path, parameters: dict | None = None, pipeline=None):
    """The stage's datasets, and its parameters validated into the types its nodes name, as ``kedro run`` does."""
    from kedro.io import DataCatalog, MemoryDataset
    from kedro.validation import ParameterValidator
    from kedro_datasets.pandas import CSVDataset, ParquetDataset

    from statefarm.datasets import ImageCacheDataset, ImageFolderDataset

    datasets = {
        "raw_images": ImageFolderDataset(str(raw / "imgs")),
        "driver_imgs_list": CSVDataset(filepath=str(raw / "driver_imgs_list.csv")),
        "sample_submission": CSVDataset(filepath=str(raw / "sample_submission.csv")),
        "image_index": ParquetDataset(filepath=str(work / "image_index.parquet")),
        "rejected_images": CSVDataset(filepath=str(work / "rejected.csv"), save_args={"index": False}),
        "image_cache": ImageCacheDataset(str(work / "image_cache")),
    }
    if pipeline is not None:
        validated = ParameterValidator({"stage": pipeline}).validate_raw_params(parameters or {})
        datasets |= {f"params:{key}": MemoryDataset(value) for key, value in validated.items()}
    return DataCatalog(datasets)


def data_prep(raw: Path, work: Path) -> None:
    from kedro.runner import SequentialRunner

    from statefarm.pipelines.data_prep.pipeline import create_pipeline

    stage = create_pipeline()
    SequentialRunner().run(stage, _catalog(raw, work, _parameters(), stage))


def sampling(raw: Path, work: Path) -> None:
    from kedro.runner import SequentialRunner

    from statefarm.data.splits import SplitConfig
    from statefarm.pipelines.sampling.pipeline import create_pipeline

    parameters = _parameters()
    stage = create_pipeline(SplitConfig(**parameters["split"]).folds)
    SequentialRunner().run(stage, _catalog(raw, work, parameters, stage))


def predict(raw: Path, work: Path) -> None:
    import torch

    from statefarm.data.layout import readable_test_images
    from statefarm.evaluation.inference import InferenceConfig, predict_with_features
    from statefarm.modeling.models import ModelConfig, create_model, model_data_config
    from statefarm.runtime.config import RuntimeConfig

    catalog = _catalog(raw, work)
    cache, names = catalog.load("image_cache"), readable_test_images(catalog.load("image_index"))
    torch.manual_seed(0)
    model = create_model(ModelConfig(name="statefarm_small_cnn", pretrained=False)).eval()
    info = {"name": "statefarm_small_cnn", "num_classes": len(CLASS_NAMES), "valid_precision": "float32"}
    checkpoint = {
        "model": model.state_dict(),
        "model_info": info,
        "data_config": model_data_config(model, cache.image_size),
    }
    parameters = _parameters()
    where = RuntimeConfig(**parameters["runtime"]).model_copy(
        update={"device": "cpu", "num_workers": min(os.cpu_count(), 8)}
    )
    probabilities, features = predict_with_features(
        checkpoint, cache, names, InferenceConfig(**parameters["inference"]), where
    )
    pd.DataFrame(probabilities, columns=list(CLASS_NAMES)).assign(img=names).to_parquet(
        work / "test_predictions.parquet"
    )
    np.save(work / "test_features.npy", features)


def neighbours(raw: Path, work: Path) -> None:
    from statefarm.evaluation.inference import InferenceConfig
    from statefarm.evaluation.neighbours import find_neighbours

    search = InferenceConfig(**_parameters()["inference"]).neighbours
    names = pd.read_parquet(work / "test_predictions.parquet", columns=["img"])["img"].tolist()
    features = np.load(work / "test_features.npy")
    find_neighbours(features, names, search.max_neighbours, search.search_dims).to_parquet(work / "neighbours.parquet")


def submission(raw: Path, work: Path) -> None:
    from statefarm.data.submission import SubmissionConfig
    from statefarm.pipelines.submission.nodes import make_submission

    catalog = _catalog(raw, work)
    table = make_submission(
        pd.read_parquet(work / "test_predictions.parquet"),
        catalog.load("sample_submission"),
        catalog.load("image_index"),
        SubmissionConfig(**_parameters()["submission"]),
    )
    table.to_csv(work / "submission.csv", index=False)


STAGES = {
    "data_prep": data_prep,
    "sampling": sampling,
    "predict": predict,
    "neighbours": neighbours,
    "submission": submission,
}


def _timed(stage: str, raw: str, work: str) -> tuple[float, float]:
    start = time.perf_counter()
    STAGES[stage](Path(raw), Path(work))
    seconds = time.perf_counter() - start
    peaks = [resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return seconds, max(peaks) / 1024


def _disk_mb(path: Path) -> float:
    return int(subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True).stdout.split()[0]) / 1024


def rehearse(scale: float, workdir: Path) -> list[dict]:
    """Generate the shape under ``workdir``, run every stage; one row of figures per stage."""
    raw, work = workdir / "raw", workdir / "work"
    work.mkdir(parents=True)
    start = time.perf_counter()
    generate(raw, scale, seed=42)
    rows = [{"stage": "generate (not ours to scale)", "seconds": time.perf_counter() - start, "disk_mb": _disk_mb(raw)}]
    for stage in STAGES:
        before = _disk_mb(work)
        # A fresh process per stage, not daemonic (data_prep starts workers of its own).
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            seconds, peak = pool.submit(_timed, stage, str(raw), str(work)).result()
        rows.append({"stage": stage, "seconds": seconds, "peak_rss_mb": peak, "disk_mb": _disk_mb(work) - before})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="share of the real image counts (1: 102,150)")
    parser.add_argument("--workdir", type=Path, default=None, help="where to generate (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="statefarm-rehearsal-"))
    try:
        rows = rehearse(args.scale, workdir)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    shape = _shape(args.scale)
    train = TRAIN_DRIVERS * len(CLASS_NAMES) * shape.images_per_driver_class
    test = TEST_DRIVERS * len(CLASS_NAMES) * shape.test_images_per_driver_class
    print(
        f"{train:,} labelled + {test:,} test JPEGs at 640x480, cached at {_parameters()['image_cache']['image_size']}"
    )
    print(f"{'stage':<30} {'seconds':>8} {'peak RSS MB':>12} {'disk MB':>9}")
    for row in rows:
        peak = f"{row['peak_rss_mb']:>12.0f}" if "peak_rss_mb" in row else f"{'':>12}"
        print(f"{row['stage']:<30} {row['seconds']:>8.1f} {peak} {row['disk_mb']:>9.0f}")


if __name__ == "__main__":
    main()
