import json

import numpy as np
import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.json import JSONDataset
from kedro_datasets.pandas import ParquetDataset
from scipy.special import softmax

from statefarm.data.layout import CLASS_NAMES
from statefarm.evaluation.cross_validation import LOGITS
from statefarm.evaluation.neighbours import find_neighbours
from statefarm.pipelines.pseudo_label.pipeline import create_pipeline
from tests.conftest import parameter_datasets

TEST_IMAGES = [f"img_t{i}.jpg" for i in range(30)]
# Fitted on the other folds' images: fold 0's labels must be calibrated at 3, fold 1's at 2.
CALIBRATION = {"mode": "shared", "temperatures": {"0": 2.5}, "temperatures_without_fold": {"0": 3.0, "1": 2.0}}
NO_SMOOTHING = {"neighbours": 1, "weight": 0.0, "weighting": "uniform", "chosen_on_folds": [1]}


def _catalog(tmp_path, logits: np.ndarray, threshold: float) -> DataCatalog:
    neighbours = find_neighbours(np.random.default_rng(1).normal(size=(len(TEST_IMAGES), 4)), TEST_IMAGES, 3)
    return DataCatalog(
        {
            "baseline.fold_0.test_logits": MemoryDataset(pd.DataFrame(logits, columns=LOGITS).assign(img=TEST_IMAGES)),
            "baseline.fold_0.test_neighbours": MemoryDataset(neighbours),
            "baseline.fold_0.model": MemoryDataset({"model_info": {"train_drivers": ["p002", "p001"]}}),
            "baseline.calibration": MemoryDataset(CALIBRATION),
            "baseline.leave_fold_out_smoothing": MemoryDataset({"fold_0": NO_SMOOTHING}),
            **parameter_datasets(
                create_pipeline([0], kind="pseudo", labels_from="baseline"),
                {"pseudo_label": {"mode": "soft", "threshold": threshold, "smooth": True}},
            ),
            "pseudo.fold_0.pseudo_labels": ParquetDataset(filepath=str(tmp_path / "labels.parquet")),
            "pseudo.fold_0.pseudo_label_sources": JSONDataset(filepath=str(tmp_path / "sources.json")),
        }
    )


def test_a_folds_pseudo_labels_are_its_baselines_test_predictions_calibrated_without_the_fold(tmp_path):
    logits = np.log(softmax(np.random.default_rng(0).normal(0, 3, (len(TEST_IMAGES), len(CLASS_NAMES))), axis=1))
    catalog = _catalog(tmp_path, logits, threshold=0.5)
    pipeline = create_pipeline([0], kind="pseudo", labels_from="baseline")
    SequentialRunner().run(pipeline, catalog)

    labels = catalog.load("pseudo.fold_0.pseudo_labels")
    calibrated = softmax(logits / 3.0, axis=1)  # the temperature fitted without fold 0
    kept = calibrated.max(axis=1) >= 0.5
    assert 0 < kept.sum() < len(TEST_IMAGES)  # the threshold left some out
    assert list(labels["img"]) == list(np.array(TEST_IMAGES)[kept])
    np.testing.assert_allclose(labels.loc[:, list(CLASS_NAMES)].to_numpy(), calibrated[kept], rtol=1e-5)
    sources = json.loads((tmp_path / "sources.json").read_text())
    assert sources == {"models": ["baseline.fold_0"], "train_drivers": ["p001", "p002"]}  # what training checks


def test_a_threshold_that_keeps_nothing_says_so(tmp_path):
    catalog = _catalog(tmp_path, np.zeros((len(TEST_IMAGES), len(CLASS_NAMES))), threshold=0.9)
    with pytest.raises(ValueError, match="pseudo_label.threshold 0.9 keeps none of 30 test images"):
        SequentialRunner().run(create_pipeline([0], kind="pseudo", labels_from="baseline"), catalog)
    assert not (tmp_path / "labels.parquet").exists()
