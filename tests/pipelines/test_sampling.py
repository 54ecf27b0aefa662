import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.json import JSONDataset
from kedro_datasets.pandas import ParquetDataset

from statefarm.pipelines.sampling.pipeline import create_pipeline
from tests.conftest import parameter_datasets


def _image_index(drivers: int = 6, per_class: int = 3) -> pd.DataFrame:
    rows = [
        (f"img_{d}_{k}_{i}.jpg", "train", f"p{d:03d}", k, True)
        for d in range(drivers)
        for k in range(10)
        for i in range(per_class)
    ]
    rows += [(f"img_t{i}.jpg", "test", None, -1, True) for i in range(5)]
    return pd.DataFrame(rows, columns=["img", "split", "subject", "label", "valid"])


def _catalog(image_index, split, sample, out) -> DataCatalog:
    return DataCatalog(
        {
            "image_index": MemoryDataset(image_index),
            **parameter_datasets(create_pipeline(), {"split": split, "sample": sample, "seed": 0}),
            "driver_folds": JSONDataset(filepath=str(out / "driver_folds.json")),
            **{f"fold_{k}.driver_split": JSONDataset(filepath=str(out / f"fold_{k}.json")) for k in range(3)},
            "sample": ParquetDataset(filepath=str(out / "sample.parquet")),
        }
    )


def test_sampling_splits_by_driver_and_samples_both_sides(tmp_path):
    index = _image_index()
    index.loc[0, "valid"] = False  # a rejected image never trains
    catalog = _catalog(
        index,
        {"valid_drivers": None, "n_folds": 3, "fold": 1},
        {"train_drivers": 2, "valid_drivers": 1, "images_per_class": 2},
        tmp_path,
    )
    SequentialRunner().run(create_pipeline(folds=[1]), catalog)

    split = catalog.load("fold_1.driver_split")
    assert len(split["valid_drivers"]) == 2 and len(split["train_drivers"]) == 4
    assert split["n_train_images"] + split["n_valid_images"] == 6 * 30 - 1
    sample = catalog.load("sample")
    assert set(sample.loc[sample["role"] == "train", "subject"]) <= set(split["train_drivers"])
    assert set(sample.loc[sample["role"] == "valid", "subject"]) <= set(split["valid_drivers"])
    assert len(sample) == 2 * 10 * 2  # images_per_class counts per side
    assert index.at[0, "img"] not in set(sample["img"])


def test_fold_all_splits_every_fold_and_each_driver_validates_once(tmp_path):
    catalog = _catalog(
        _image_index(), {"n_folds": 3, "fold": "all"}, {"train_drivers": 2, "valid_drivers": 1}, tmp_path
    )
    SequentialRunner().run(create_pipeline(folds=[0, 1, 2]), catalog)

    splits = [catalog.load(f"fold_{k}.driver_split") for k in range(3)]
    validated = sorted(d for split in splits for d in split["valid_drivers"])
    assert validated == [f"p{d:03d}" for d in range(6)]
    for split in splits:
        assert not set(split["train_drivers"]) & set(split["valid_drivers"])
    assert set(catalog.load("sample")["subject"]) <= set(splits[0]["train_drivers"]) | set(splits[0]["valid_drivers"])


def test_a_sample_that_cannot_be_drawn_leaves_the_previous_folds_and_sample_alone(tmp_path):
    good = _catalog(_image_index(), {"n_folds": 3, "fold": 0}, {"train_drivers": 2, "valid_drivers": 1}, tmp_path)
    SequentialRunner().run(create_pipeline(folds=[0]), good)
    written = {path: path.read_bytes() for path in tmp_path.iterdir()}

    bad = _catalog(_image_index(), {"n_folds": 2, "fold": 0}, {"train_drivers": 2, "valid_drivers": 4}, tmp_path)
    with pytest.raises(ValueError, match="sample.valid_drivers is 4 but the split has only 3 valid drivers"):
        SequentialRunner().run(create_pipeline(folds=[0]), bad)
    assert {path: path.read_bytes() for path in tmp_path.iterdir()} == written
