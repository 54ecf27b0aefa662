import json

import numpy as np
import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.json import JSONDataset
from kedro_datasets.pandas import ParquetDataset

from statefarm.data.layout import CLASS_NAMES
from statefarm.evaluation.cross_validation import LOGITS, PROBABILITIES
from statefarm.evaluation.metrics import log_loss
from statefarm.evaluation.neighbours import find_neighbours
from statefarm.pipelines.cross_validation.pipeline import create_pipeline
from tests.conftest import parameter_datasets

DRIVERS = {"p001": 0, "p002": 0, "p003": 1, "p004": 1}  # driver -> the fold that validates it
FRAMES = 4  # per driver and class: consecutive frames, close to each other


def _labelled() -> pd.DataFrame:
    rows = [
        (f"img_{driver}_{label}_{frame}.jpg", driver, label)
        for driver in DRIVERS
        for label in range(len(CLASS_NAMES))
        for frame in range(FRAMES)
    ]
    return pd.DataFrame(rows, columns=["img", "subject", "label"])


def _features(table: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """A frame's features: its class and driver, plus a little noise, so its neighbours are its video's frames."""
    classes = np.eye(len(CLASS_NAMES))[table["label"].clip(lower=0)]
    drivers = np.eye(len(DRIVERS))[table["subject"].map(list(DRIVERS).index)]
    return np.hstack([classes, 0.5 * drivers]) + rng.normal(0, 0.05, (len(table), len(CLASS_NAMES) + len(DRIVERS)))


def _overconfident_logits(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Right about three times in four, and far too sure either way."""
    guessed = np.where(rng.random(len(labels)) < 0.75, labels, rng.integers(0, len(CLASS_NAMES), len(labels)))
    return 8.0 * np.eye(len(CLASS_NAMES))[guessed] + rng.normal(0, 1, (len(labels), len(CLASS_NAMES)))


def _catalog(tmp_path) -> tuple[DataCatalog, pd.DataFrame]:
    rng = np.random.default_rng(0)
    labelled = _labelled()
    tests = pd.DataFrame({"img": [f"img_t{i}.jpg" for i in range(20)], "subject": "p099", "label": -1})
    index = pd.concat([labelled.assign(split="train"), tests.assign(split="test")], ignore_index=True)
    index["valid"] = True
    data = {
        "image_index": index,
        "driver_folds": {"driver_folds": DRIVERS},
    }
    parameters = {
        "inference": {"neighbours": {"max_neighbours": 3, "neighbours": [1, 3], "search_dims": None}},
        "submission": {"clip": 0.001},
    }
    for fold in (0, 1):
        valid = labelled[labelled["subject"].map(DRIVERS) == fold].reset_index(drop=True)
        logits = _overconfident_logits(valid["label"].to_numpy(), rng)
        data[f"baseline.fold_{fold}.valid_predictions"] = valid.assign(**dict(zip(LOGITS, logits.T, strict=True)))
        data[f"baseline.fold_{fold}.valid_neighbours"] = find_neighbours(_features(valid, rng), list(valid["img"]), 3)
        data[f"fold_{fold}.driver_split"] = {
            "fold": fold,
            "train_drivers": [d for d, f in DRIVERS.items() if f != fold],
            "valid_drivers": [d for d, f in DRIVERS.items() if f == fold],
        }
        test_logits = rng.normal(0, 2, (len(tests), len(CLASS_NAMES)))
        data[f"baseline.fold_{fold}.test_logits"] = tests[["img"]].assign(
            **dict(zip(LOGITS, test_logits.T, strict=True))
        )
        data[f"baseline.fold_{fold}.test_neighbours"] = find_neighbours(rng.normal(size=(20, 5)), list(tests["img"]), 3)
    kept = {
        "baseline.oof_predictions": ParquetDataset(filepath=str(tmp_path / "oof.parquet")),
        "baseline.test_predictions": ParquetDataset(filepath=str(tmp_path / "test.parquet")),
        "baseline.cv_report": ParquetDataset(filepath=str(tmp_path / "cv_report.parquet")),
        "baseline.calibration": JSONDataset(filepath=str(tmp_path / "calibration.json")),
        "baseline.neighbour_smoothing": JSONDataset(filepath=str(tmp_path / "smoothing.json")),
    }
    given = {name: MemoryDataset(value) for name, value in data.items()}
    return DataCatalog(
        given | parameter_datasets(create_pipeline("baseline", folds=[0, 1]), parameters) | kept
    ), labelled


def test_cross_validation_scores_every_driver_once_calibrated_and_smoothed_as_submitted(tmp_path):
    catalog, labelled = _catalog(tmp_path)
    pipeline = create_pipeline("baseline", folds=[0, 1])
    assert pipeline.inputs() <= set(catalog.keys())  # the stage reads nothing the test did not give it
    SequentialRunner().run(pipeline, catalog)

    oof = catalog.load("baseline.oof_predictions")
    assert sorted(oof["img"]) == sorted(labelled["img"])  # every labelled image once
    assert (oof["fold"] == oof["subject"].map(DRIVERS)).all()  # from the model that never saw its driver
    calibration = json.loads((tmp_path / "calibration.json").read_text())
    assert all(t > 1.5 for t in calibration["temperatures"].values())  # overconfident logits are tempered
    smoothing = json.loads((tmp_path / "smoothing.json").read_text())
    assert smoothing["log_loss_after"] <= smoothing["log_loss_before"]  # weight 0 stays in the grid
    probabilities = oof.loc[:, PROBABILITIES].to_numpy()
    assert log_loss(probabilities, oof["label"].to_numpy()) == pytest.approx(smoothing["log_loss_after"], rel=1e-6)
    report = catalog.load("baseline.cv_report")
    assert report.loc[report["scope"] == "overall", "log_loss"].item() == pytest.approx(smoothing["log_loss_after"])
    assert set(report.loc[report["scope"] == "driver", "subject"]) == set(DRIVERS)

    test = catalog.load("baseline.test_predictions")
    assert len(test) == 20 and np.allclose(test.loc[:, PROBABILITIES].sum(axis=1), 1.0)
