"""Shared fixtures: a tiny generated dataset on disk, MLflow isolated per test."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach the hub, and fail fast if they try

import pandas as pd
import pytest
from kedro.io import MemoryDataset
from kedro.pipeline import Pipeline
from kedro.validation import ParameterValidator

from statefarm.data.demo_data import DemoDataConfig, generate_demo_dataset

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("STATEFARM_SHARED_DATA", REPO_ROOT.parent / "shared" / "data" / "statefarm-80x60"))
SHARED_MOVIELENS = SHARED_DATA.parent / "ml-latest-small"

TINY_DEMO = DemoDataConfig(
    train_drivers=6,
    test_drivers=2,
    images_per_driver_class=3,
    test_images_per_driver_class=1,
    image_size=(48, 64),
)


def parameter_datasets(pipeline: Pipeline, parameters: dict) -> dict[str, MemoryDataset]:
    """The ``params:`` inputs of ``pipeline`` from ``parameters`` (groups as in ``conf/``), each validated into the
    type its node names, as ``kedro run`` hands them over."""
    validated = ParameterValidator({"tested": pipeline}).validate_raw_params(parameters)

    def value(path: str):
        found = validated
        for part in path.split("."):
            found = found[part] if isinstance(found, dict) else getattr(found, part)
        return found

    names = (name for name in pipeline.inputs() if name.startswith("params:"))
    return {name: MemoryDataset(value(name.removeprefix("params:"))) for name in names}


def write_raw_dataset(root: Path, config: DemoDataConfig = TINY_DEMO, seed: int = 0) -> Path:
    """Write a generated dataset in Kaggle's layout under ``root``; return ``root``."""
    images, driver_list, sample_submission = generate_demo_dataset(config, seed)
    for key, draw in images.items():
        path = root / "imgs" / f"{key}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        draw().save(path, format="JPEG", quality=90)
    driver_list.to_csv(root / "driver_imgs_list.csv", index=False)
    sample_submission.to_csv(root / "sample_submission.csv", index=False)
    return root


@pytest.fixture(scope="session")
def raw_dataset(tmp_path_factory) -> Path:
    """A tiny generated dataset (6 drivers x 10 classes x 3 train images, 20 test images).

    Shared by the session: tests that damage files must copy it first.
    """
    return write_raw_dataset(tmp_path_factory.mktemp("raw"))


@pytest.fixture
def raw_copy(raw_dataset: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny dataset, safe to damage."""
    return Path(shutil.copytree(raw_dataset, tmp_path / "raw"))


def read_csvs(root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    return (
        pd.read_csv(root / "driver_imgs_list.csv"),
        pd.read_csv(root / "sample_submission.csv"),
    )


@pytest.fixture(autouse=True)
def _isolate_mlflow(monkeypatch, tmp_path):
    """Point MLflow at this test's folder and clear MLFLOW_* variables afterwards."""
    for name in [name for name in os.environ if name.startswith("MLFLOW_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    yield
    import mlflow

    while mlflow.active_run() is not None:
        mlflow.end_run()


def run_demo_data(project: Path) -> None:
    """``kedro run --env=demo --pipelines=demo_data`` in ``project``, at its smallest (3 drivers, 1 image each)."""
    import mlflow
    from kedro.framework.session import KedroSession

    params = {"demo_data": {"train_drivers": 2, "test_drivers": 1, "images_per_driver_class": 1}}
    try:
        with KedroSession.create(project_path=project, env="demo", runtime_params=params) as session:
            session.run(pipeline_names=["demo_data"])
    finally:
        while mlflow.active_run() is not None:
            mlflow.end_run()


def copy_project(tmp_path: Path, monkeypatch) -> Path:
    """A copy of the project's configuration in ``tmp_path``, as a fresh checkout has it, made current.

    MLflow then tracks to ``mlflow.db`` in that folder, as for a user.
    """
    from kedro.framework.startup import bootstrap_project

    tmp_path.mkdir(parents=True, exist_ok=True)
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    shutil.copytree(REPO_ROOT / "conf", tmp_path / "conf", ignore=shutil.ignore_patterns("local"))
    (tmp_path / "conf" / "local").mkdir()
    # The store conf/base names, but absolute: MLflow caches a store per URI, so the relative
    # "sqlite:///mlflow.db" would keep writing to the first test's folder. Every environment
    # gets it, as --env=demo reads conf/demo, not conf/local.
    for environment in ("local", "demo", "real80x60"):
        (tmp_path / "conf" / environment / "mlflow.yml").write_text(
            f"server:\n  mlflow_tracking_uri: sqlite:///{tmp_path / 'mlflow.db'}\n"
        )
    (tmp_path / "src").mkdir()  # the package itself is installed
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    bootstrap_project(tmp_path)
    return tmp_path


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED_DATA / "driver_imgs_list.csv").is_file():
        pytest.skip(f"real 80x60 State Farm images not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def prepared_data(raw_dataset, tmp_path_factory):
    """The tiny dataset indexed and cached at 24x32: ``(image_index, image_cache)``."""
    from statefarm.data.cache import open_image_cache, write_image_cache
    from statefarm.datasets import ImageFolderDataset
    from statefarm.pipelines.data_prep.nodes import ImageCacheConfig, index_images, plan_image_cache, reject_undecodable

    driver_list, sample_submission = read_csvs(raw_dataset)
    files = ImageFolderDataset(str(raw_dataset / "imgs")).load()
    checked, rejected = index_images(files, driver_list, sample_submission, num_workers=1)
    directory = tmp_path_factory.mktemp("cache") / "image_cache"
    write_image_cache(plan_image_cache(checked, ImageCacheConfig(image_size=(24, 32)), num_workers=1), directory)
    image_cache = open_image_cache(directory)
    image_index, _ = reject_undecodable(checked, rejected, image_cache)
    return image_index, image_cache


def fold_stage_inputs(prepared_data, tmp_path: Path) -> dict:
    """The inputs of a stage that trains on the driver folds (``lr_find``, ``regularization_tuning``): the tiny
    index and cache, three folds of its drivers, and no tuned augmentation or regularization yet."""
    from kedro.io import MemoryDataset

    from statefarm.data.splits import SplitConfig, assign_folds
    from statefarm.datasets import OptionalYAMLDataset

    image_index, cache = prepared_data
    labelled = image_index[image_index["split"] == "train"]
    return {
        "image_cache": MemoryDataset(cache, copy_mode="assign"),
        "image_index": MemoryDataset(image_index),
        "driver_folds": MemoryDataset(assign_folds(labelled, SplitConfig(n_folds=3), seed=0)),
        "tuned_augmentations": OptionalYAMLDataset(filepath=str(tmp_path / "tuned_augmentations.yml")),
        "tuned_regularization": OptionalYAMLDataset(filepath=str(tmp_path / "tuned_regularization.yml")),
    }


def corrupt_huffman_tables(path: Path) -> None:
    """Damage a JPEG so that its header and end marker are intact but its pixels cannot be decoded."""
    data = bytearray(path.read_bytes())
    table = data.index(b"\xff\xc4")  # the first Huffman table: its 16 code counts become nonsense
    data[table + 5 : table + 21] = b"\xff" * 16
    path.write_bytes(bytes(data))
