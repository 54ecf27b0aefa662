import numpy as np
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.pandas import CSVDataset, ParquetDataset

from statefarm.data.images import decode_resized
from statefarm.data.layout import IMAGE_INDEX_COLUMNS
from statefarm.datasets import ImageCacheDataset, ImageFolderDataset
from statefarm.pipelines.data_prep.pipeline import create_pipeline
from statefarm.pipelines.training.nodes import train_model
from tests.conftest import corrupt_huffman_tables, parameter_datasets, read_csvs


def _catalog(raw, out, image_size=(30, 40)) -> DataCatalog:
    driver_list, sample_submission = read_csvs(raw)
    return DataCatalog(
        {
            "raw_images": ImageFolderDataset(str(raw / "imgs")),
            "driver_imgs_list": MemoryDataset(driver_list),
            "sample_submission": MemoryDataset(sample_submission),
            **parameter_datasets(
                create_pipeline(), {"num_workers": 1, "image_cache": {"image_size": list(image_size)}}
            ),
            "image_index": ParquetDataset(filepath=str(out / "image_index.parquet")),
            "rejected_images": CSVDataset(filepath=str(out / "rejected_images.csv"), save_args={"index": False}),
            "image_cache": ImageCacheDataset(str(out / "image_cache")),
        }
    )


def test_data_prep_indexes_and_caches_every_image(raw_dataset, tmp_path):
    catalog = _catalog(raw_dataset, tmp_path)
    SequentialRunner().run(create_pipeline(), catalog)

    index = catalog.load("image_index")
    assert tuple(index.columns) == (*IMAGE_INDEX_COLUMNS, "cache_fingerprint")
    assert (index["split"] == "train").sum() == 180 and (index["split"] == "test").sum() == 20
    assert index["valid"].all() and catalog.load("rejected_images").empty
    assert index.loc[index["split"] == "train", "label"].between(0, 9).all()
    assert (index[["width", "height"]] == [64, 48]).all().all()

    cache = catalog.load("image_cache")
    assert cache.images.shape == (200, 30, 40, 3)
    row = index.iloc[17]
    np.testing.assert_array_equal(cache.images[cache.rows[row["img"]]], decode_resized(row["path"], (30, 40)))


def test_damaged_images_are_reported_not_fatal(raw_copy, tmp_path):
    driver_list, sample_submission = read_csvs(raw_copy)
    train_victim = raw_copy / "imgs" / "train" / driver_list.at[0, "classname"] / driver_list.at[0, "img"]
    train_victim.write_bytes(train_victim.read_bytes()[:200])  # truncated
    test_victim = raw_copy / "imgs" / "test" / sample_submission.at[0, "img"]
    test_victim.unlink()  # listed in sample_submission.csv, absent on disk

    catalog = _catalog(raw_copy, tmp_path)
    SequentialRunner().run(create_pipeline(), catalog)

    rejected = catalog.load("rejected_images").set_index("img")
    assert "truncated" in rejected.at[driver_list.at[0, "img"], "reason"]
    assert (
        rejected.at[sample_submission.at[0, "img"], "reason"] == "listed in sample_submission.csv but not in imgs/test"
    )
    index = catalog.load("image_index").set_index("img")
    assert driver_list.at[0, "img"] not in index.index  # never trained on
    assert (index["split"] == "train").sum() == 179
    # The test image keeps its row, flagged, so the submission can still answer for it.
    assert index.at[sample_submission.at[0, "img"], "split"] == "test"
    assert not index.at[sample_submission.at[0, "img"], "valid"]
    cache = catalog.load("image_cache")
    assert not cache.decoded[cache.rows[sample_submission.at[0, "img"]]]
    assert int(cache.decoded.sum()) == 198 and len(cache.decoded) == 199


def test_an_image_that_passes_the_checks_but_cannot_be_decoded_is_rejected_with_the_reason(raw_copy, tmp_path):
    driver_list, sample_submission = read_csvs(raw_copy)
    train_name, test_name = driver_list.at[3, "img"], sample_submission.at[2, "img"]
    corrupt_huffman_tables(raw_copy / "imgs" / "train" / driver_list.at[3, "classname"] / train_name)
    corrupt_huffman_tables(raw_copy / "imgs" / "test" / test_name)

    catalog = _catalog(raw_copy, tmp_path)
    SequentialRunner().run(create_pipeline(), catalog)

    rejected = catalog.load("rejected_images").set_index("img")
    for name in (train_name, test_name):
        assert rejected.at[name, "reason"].startswith("could not be decoded: OSError: broken data stream")
    index = catalog.load("image_index").set_index("img")
    assert not index.at[train_name, "valid"] and not index.at[test_name, "valid"]  # never trained on, given the prior
    assert index["valid"].sum() == 200 - 2


def test_training_refuses_an_image_cache_from_another_build(raw_dataset, tmp_path):
    catalog = _catalog(raw_dataset, tmp_path)
    SequentialRunner().run(create_pipeline(), catalog)
    older_index = catalog.load("image_index").assign(cache_fingerprint="0123456789abcdef")
    with pytest.raises(
        ValueError, match=r"not the one the image index was made with .*kedro run --pipelines=data_prep"
    ):
        train_model(catalog.load("image_cache"), older_index, {}, None, None, None, {}, {}, {}, {}, {}, None, 0, {}, {})


def test_malformed_driver_list_names_the_file_and_line(raw_dataset, tmp_path):
    catalog = _catalog(raw_dataset, tmp_path)
    driver_list = catalog.load("driver_imgs_list").copy()
    driver_list.loc[4, "classname"] = "c12"
    catalog.save("driver_imgs_list", driver_list)
    with pytest.raises(ValueError, match=r"driver_imgs_list.csv: unknown class at line 6 \('c12'\)"):
        SequentialRunner().run(create_pipeline(), catalog)


def test_empty_image_folder_names_the_folder(tmp_path, raw_dataset):
    (tmp_path / "empty" / "imgs").mkdir(parents=True)
    catalog = _catalog(raw_dataset, tmp_path)
    catalog["raw_images"] = ImageFolderDataset(str(tmp_path / "empty" / "imgs"))
    with pytest.raises(Exception, match=r"empty/imgs.*(empty|no images)"):
        SequentialRunner().run(create_pipeline(), catalog)
    assert not (tmp_path / "image_cache").exists()
