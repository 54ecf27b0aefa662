import numpy as np
import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.json import JSONDataset
from kedro_datasets.pandas import ParquetDataset
from scipy.special import softmax

from statefarm.data.layout import CLASS_NAMES
from statefarm.evaluation.cross_validation import LOGITS, PROBABILITIES
from statefarm.evaluation.metrics import log_loss
from statefarm.pipelines.blend.pipeline import create_pipeline
from tests.conftest import parameter_datasets

IMAGES, DRIVERS = 300, 6


def _model_outputs(labels: np.ndarray, knows: np.ndarray, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A model's out-of-fold table (sure and right on the images it ``knows``) and its test predictions."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1, (len(labels), len(CLASS_NAMES)))
    logits[knows, labels[knows]] += 5.0
    probabilities = softmax(logits, axis=1)
    subjects = [f"p{i % DRIVERS:03d}" for i in range(len(labels))]
    oof = pd.DataFrame(probabilities, columns=PROBABILITIES).assign(
        **dict(zip(LOGITS, np.log(probabilities).T, strict=True)),
        img=[f"img_{i}.jpg" for i in range(len(labels))], subject=subjects, label=labels,
        fold=[i % DRIVERS % 3 for i in range(len(labels))],
    )  # fmt: skip
    test = pd.DataFrame(softmax(rng.normal(0, 1, (4, len(CLASS_NAMES))), axis=1), columns=list(CLASS_NAMES))
    return oof, test.assign(img=[f"img_t{i}.jpg" for i in range(4)])


def test_blend_pools_two_models_out_of_fold_and_reports_like_a_model(tmp_path):
    labels = np.random.default_rng(0).integers(0, len(CLASS_NAMES), IMAGES)
    halves = np.arange(IMAGES) % 2 == 0
    (first_oof, first_test), (second_oof, second_test) = (
        _model_outputs(labels, halves, 1), _model_outputs(labels, ~halves, 2),
    )  # fmt: skip
    index = first_oof.loc[:, ["img", "subject", "label"]].assign(split="train", valid=True)
    catalog = DataCatalog(
        {
            "pseudo.oof_predictions": MemoryDataset(first_oof),
            "pseudo.small.oof_predictions": MemoryDataset(second_oof),
            "pseudo.test_predictions": MemoryDataset(first_test),
            "pseudo.small.test_predictions": MemoryDataset(second_test),
            "image_index": MemoryDataset(index),
            **parameter_datasets(create_pipeline("pseudo.blend", ["pseudo", "pseudo.small"]), {"submission": {}}),
            "pseudo.blend.blend_weights": JSONDataset(filepath=str(tmp_path / "blend_weights.json")),
            **{
                f"pseudo.blend.{name}": ParquetDataset(filepath=str(tmp_path / f"{name}.parquet"))
                for name in ("oof_predictions", "test_predictions", "cv_report")
            },
        }
    )
    pipeline = create_pipeline("pseudo.blend", ["pseudo", "pseudo.small"])
    assert pipeline.inputs() == {
        "pseudo.oof_predictions", "pseudo.small.oof_predictions", "pseudo.test_predictions",
        "pseudo.small.test_predictions", "image_index", "params:submission",
    }  # fmt: skip
    SequentialRunner().run(pipeline, catalog)
    weights = catalog.load("pseudo.blend.blend_weights")
    assert set(weights["all_folds"]) == {"pseudo", "pseudo.small"}
    assert weights["log_loss"]["blend"] < 0.8 * min(weights["log_loss"]["pseudo"], weights["log_loss"]["pseudo.small"])
    blended = catalog.load("pseudo.blend.oof_predictions")
    assert weights["log_loss"]["blend"] == pytest.approx(
        log_loss(blended.loc[:, PROBABILITIES].to_numpy(), blended["label"].to_numpy())
    )
    test = catalog.load("pseudo.blend.test_predictions")
    assert sorted(test["img"]) == sorted(first_test["img"])
    np.testing.assert_allclose(test.loc[:, list(CLASS_NAMES)].sum(axis=1), 1.0)
    report = catalog.load("pseudo.blend.cv_report")
    overall = report[report["scope"] == "overall"].iloc[0]
    assert overall["log_loss"] == pytest.approx(weights["log_loss"]["blend"], abs=1e-3)  # the blend, scored as a model
    assert overall["coverage"] == 1.0 and set(report.loc[report["scope"] == "driver", "subject"]) == set(
        index["subject"]
    )
