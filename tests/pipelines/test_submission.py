from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.json import JSONDataset
from kedro_datasets.pandas import CSVDataset

from statefarm.data.layout import CLASS_NAMES
from statefarm.data.submission import SubmissionError
from statefarm.pipelines.submission.pipeline import create_pipeline
from tests.conftest import parameter_datasets

TEST_IMAGES = ["img_1.jpg", "img_2.jpg", "img_3.jpg", "img_blank.jpg"]
SAMPLE_ROW = dict.fromkeys(CLASS_NAMES, 0.1)


def _image_index() -> pd.DataFrame:
    train = [(f"img_tr{k}.jpg", "train", "p001", k % 10, True) for k in range(20)]
    test = [(name, "test", None, -1, name != "img_blank.jpg") for name in TEST_IMAGES]
    return pd.DataFrame(train + test, columns=["img", "split", "subject", "label", "valid"])


def _catalog(test_predictions: pd.DataFrame, out: Path) -> DataCatalog:
    return DataCatalog(
        {
            "pseudo.test_predictions": MemoryDataset(test_predictions),
            "sample_submission": MemoryDataset(pd.DataFrame({"img": TEST_IMAGES[::-1]}).assign(**SAMPLE_ROW)),
            "image_index": MemoryDataset(_image_index()),
            **parameter_datasets(create_pipeline("pseudo"), {"submission": {"clip": 0.01}}),
            "pseudo.submission": CSVDataset(filepath=str(out / "submission.csv"), save_args={"index": False}),
            "pseudo.kaggle_receipt": JSONDataset(filepath=str(out / "kaggle_receipt.json")),
        }
    )


def _predictions(names: list[str]) -> pd.DataFrame:
    probabilities = np.full((len(names), len(CLASS_NAMES)), 0.0)
    probabilities[:, 3] = 1.0  # sure of c3: clipped below 1
    return pd.DataFrame(probabilities, columns=list(CLASS_NAMES)).assign(img=names)


def test_submission_is_one_clipped_row_per_test_image_in_kaggles_order(tmp_path):
    catalog = _catalog(_predictions(TEST_IMAGES[:3]), tmp_path)
    SequentialRunner().run(create_pipeline("pseudo"), catalog)
    submission = catalog.load("pseudo.submission")
    assert list(submission["img"]) == TEST_IMAGES[::-1] and list(submission.columns) == ["img", *CLASS_NAMES]
    readable = submission.set_index("img").loc[TEST_IMAGES[:3]]
    assert readable["c3"].max() <= 0.99 and readable.drop(columns="c3").min().min() >= 0.01 / 1.1
    blank = submission.set_index("img").loc["img_blank.jpg"]
    np.testing.assert_allclose(blank.to_numpy(), np.full(10, 0.1), rtol=1e-6)  # the training prior: 2 of each class
    receipt = catalog.load("pseudo.kaggle_receipt")
    assert receipt["uploaded"] is False and len(receipt["sha256"]) == 64


def test_a_readable_test_image_without_a_prediction_writes_no_submission(tmp_path):
    catalog = _catalog(_predictions(TEST_IMAGES[:2]), tmp_path)
    with pytest.raises(SubmissionError, match="img_3.jpg"):
        SequentialRunner().run(create_pipeline("pseudo"), catalog)
    assert not list(tmp_path.iterdir())
