"""Integration: data_prep + sampling on the real State Farm images at 80x60.

The shared folder holds the 17,077 labelled images of 20 drivers and Kaggle's full test
set, all 79,726 frames, as `sample_submission.csv` lists them.
"""

import pandas as pd
import pytest
from kedro.io import DataCatalog
from kedro.runner import SequentialRunner
from kedro_datasets.json import JSONDataset
from kedro_datasets.pandas import CSVDataset, ParquetDataset

from statefarm.datasets import ImageCacheDataset, ImageFolderDataset
from statefarm.pipelines.data_prep.pipeline import create_pipeline as data_prep
from statefarm.pipelines.sampling.pipeline import create_pipeline as sampling
from tests.conftest import parameter_datasets

LABELLED_IMAGES = 17_077
KAGGLE_TEST_IMAGES = 79_726
# Frames of one flat colour in Kaggle's test set: rejected as degenerate, answered with the class prior.
BLANK_TEST_FRAMES = {"img_32463.jpg", "img_77655.jpg", "img_79591.jpg"}

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]


def test_real_80x60_data_is_indexed_cached_and_split_by_driver(shared_data, tmp_path):
    catalog = DataCatalog(
        {
            "raw_images": ImageFolderDataset(str(shared_data / "imgs")),
            "driver_imgs_list": CSVDataset(filepath=str(shared_data / "driver_imgs_list.csv")),
            "sample_submission": CSVDataset(filepath=str(shared_data / "sample_submission.csv")),
            **parameter_datasets(
                data_prep() + sampling(folds=[2]),
                {
                    "num_workers": None,
                    "image_cache": {"image_size": [60, 80]},
                    "split": {"n_folds": 5, "fold": 2},
                    "sample": {"train_drivers": 4, "valid_drivers": 2, "images_per_class": 20},
                    "seed": 42,
                },
            ),
            "image_index": ParquetDataset(filepath=str(tmp_path / "image_index.parquet")),
            "rejected_images": CSVDataset(filepath=str(tmp_path / "rejected.csv"), save_args={"index": False}),
            "image_cache": ImageCacheDataset(str(tmp_path / "image_cache")),
            "driver_folds": JSONDataset(filepath=str(tmp_path / "driver_folds.json")),
            "fold_2.driver_split": JSONDataset(filepath=str(tmp_path / "driver_split.json")),
            "sample": ParquetDataset(filepath=str(tmp_path / "sample.parquet")),
        }
    )
    SequentialRunner().run(data_prep() + sampling(folds=[2]), catalog)

    index = catalog.load("image_index")
    train, test = index[index["split"] == "train"], index[index["split"] == "test"]
    assert len(train) == LABELLED_IMAGES and len(test) == KAGGLE_TEST_IMAGES
    assert train["subject"].nunique() == 20
    rejected = catalog.load("rejected_images")
    assert set(rejected["img"]) == BLANK_TEST_FRAMES and rejected["reason"].str.startswith("degenerate JPEG").all()
    assert set(test.loc[~test["valid"], "img"]) == BLANK_TEST_FRAMES  # they keep their rows
    assert (index[["width", "height"]] == [80, 60]).all().all()

    submission_rows = pd.read_csv(shared_data / "sample_submission.csv")["img"]
    assert set(submission_rows) == set(test["img"])

    cache = catalog.load("image_cache")
    assert cache.images.shape == (LABELLED_IMAGES + KAGGLE_TEST_IMAGES, 60, 80, 3)
    assert cache.decoded.sum() == LABELLED_IMAGES + KAGGLE_TEST_IMAGES - len(BLANK_TEST_FRAMES)

    split = catalog.load("fold_2.driver_split")
    assert not set(split["train_drivers"]) & set(split["valid_drivers"])
    assert set(split["train_drivers"]) | set(split["valid_drivers"]) == set(train["subject"])
    assert split["n_train_images"] + split["n_valid_images"] == LABELLED_IMAGES
    sample = catalog.load("sample")
    by_role = sample.groupby("role")["subject"].agg(lambda s: set(s))
    assert not by_role["train"] & by_role["valid"]
    assert pd.Series(sorted(by_role["valid"])).isin(split["valid_drivers"]).all()
