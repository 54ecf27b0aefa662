import pandas as pd
import pytest
from PIL import Image

from statefarm.data.images import check_jpeg
from statefarm.data.layout import LayoutError, build_image_index, validate_driver_list
from statefarm.datasets import ImageFolderDataset
from tests.conftest import TINY_DEMO, read_csvs


def _check_all(paths):
    return [check_jpeg(path) for path in paths]


def _index(root, driver_list=None, sample_submission=None):
    files = ImageFolderDataset(str(root / "imgs")).load()
    drivers, submission = read_csvs(root)
    return build_image_index(
        files,
        drivers if driver_list is None else driver_list,
        submission if sample_submission is None else sample_submission,
        _check_all,
    )


def test_clean_dataset_indexes_every_image(raw_dataset):
    index, rejected = _index(raw_dataset)
    train = index[index["split"] == "train"]
    test = index[index["split"] == "test"]
    assert len(train) == TINY_DEMO.train_drivers * 10 * TINY_DEMO.images_per_driver_class
    assert len(test) == TINY_DEMO.test_drivers * 10 * TINY_DEMO.test_images_per_driver_class
    assert rejected.empty
    assert train["subject"].nunique() == TINY_DEMO.train_drivers
    assert (train["label"] == train["classname"].str[1:].astype(int)).all()
    assert (test["label"] == -1).all() and test["valid"].all()
    assert set(index[["width", "height"]].itertuples(index=False)) == {(64, 48)}


def test_damaged_and_mismatched_images_are_reported_not_fatal(raw_copy):
    drivers, submission = read_csvs(raw_copy)
    first, second, third, fourth = drivers.iloc[:4].itertuples(index=False)
    train_dir = raw_copy / "imgs" / "train"
    truncated = train_dir / first.classname / first.img
    truncated.write_bytes(truncated.read_bytes()[:-300])
    (train_dir / second.classname / second.img).unlink()
    png = train_dir / third.classname / third.img
    Image.open(png).save(png, format="PNG")
    moved_to = "c9" if fourth.classname != "c9" else "c0"
    (train_dir / fourth.classname / fourth.img).rename(train_dir / moved_to / fourth.img)
    Image.new("RGB", (64, 48)).save(train_dir / "c0" / "img_unlisted.jpg")
    broken_test = raw_copy / "imgs" / "test" / submission["img"].iloc[0]
    broken_test.write_bytes(b"garbage")
    (raw_copy / "imgs" / "test" / submission["img"].iloc[1]).unlink()

    index, rejected = _index(raw_copy)

    reasons = dict(zip(rejected["img"], rejected["reason"], strict=True))
    assert reasons[first.img] == "truncated JPEG (no end-of-image marker)"
    assert reasons[second.img] == "listed in driver_imgs_list.csv but not in imgs/train"
    assert reasons[third.img] == "not a JPEG (PNG)"
    assert reasons[fourth.img] == f"in folder {moved_to} but driver_imgs_list.csv says {fourth.classname}"
    assert reasons["img_unlisted.jpg"] == "in imgs/train but not listed in driver_imgs_list.csv"
    assert reasons[submission["img"].iloc[0]] == "not an image"
    assert reasons[submission["img"].iloc[1]] == "listed in sample_submission.csv but not in imgs/test"
    train_names = set(index.loc[index["split"] == "train", "img"])
    assert not train_names & {first.img, second.img, third.img, fourth.img, "img_unlisted.jpg"}
    assert len(train_names) == len(drivers) - 4
    test = index[index["split"] == "test"].set_index("img")
    assert list(test.index) == list(submission["img"])  # every test image keeps its row
    assert not test.loc[submission["img"].iloc[0], "valid"]
    assert not test.loc[submission["img"].iloc[1], "valid"]
    assert test["valid"].sum() == len(submission) - 2


def _zero_scan_data(path):
    data = path.read_bytes()
    start_of_scan = data.index(b"\xff\xda")
    start = start_of_scan + 2 + int.from_bytes(data[start_of_scan + 2 : start_of_scan + 4], "big")
    end = data.rindex(b"\xff\xd9")
    path.write_bytes(data[:start] + bytes(end - start) + data[end:])


def test_garbage_pixel_data_is_rejected_and_a_test_image_keeps_its_row(raw_copy):
    drivers, submission = read_csvs(raw_copy)
    train_image = drivers.iloc[0]
    _zero_scan_data(raw_copy / "imgs" / "train" / train_image.classname / train_image.img)
    _zero_scan_data(raw_copy / "imgs" / "test" / submission["img"].iloc[0])

    index, rejected = _index(raw_copy)

    reasons = dict(zip(rejected["img"], rejected["reason"], strict=True))
    degenerate = "degenerate JPEG (100% of its pixel data is byte 0x00: flat or garbage)"
    assert reasons == {train_image.img: degenerate, submission["img"].iloc[0]: degenerate}
    assert train_image.img not in set(index.loc[index["split"] == "train", "img"])
    test = index[index["split"] == "test"].set_index("img")
    assert list(test.index) == list(submission["img"]) and not test.loc[submission["img"].iloc[0], "valid"]


def test_misplaced_file_is_reported(raw_copy):
    Image.new("RGB", (8, 8)).save(raw_copy / "imgs" / "stray.jpg")
    _, rejected = _index(raw_copy)
    assert rejected.set_index("img").loc["stray.jpg", "reason"].startswith("unexpected location")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.drop(columns="subject"), r"driver_imgs_list.csv: missing column\(s\) \['subject'\]"),
        (
            lambda d: d.assign(classname=d["classname"].where(d.index != 3, "c11")),
            r"driver_imgs_list.csv: unknown class at line 5 \('c11'\)",
        ),
        (
            lambda d: pd.concat([d, d.iloc[[7]]], ignore_index=True),
            r"driver_imgs_list.csv: an image is listed more than once, at line 9 \(.img_\d+.jpg.\), line 182",
        ),
        (
            lambda d: d.assign(subject=d["subject"].where(d.index != 0, None)),
            r"driver_imgs_list.csv: empty fields at line 2",
        ),
    ],
    ids=["missing-column", "unknown-class", "duplicate-image", "empty-field"],
)
def test_malformed_driver_list_names_file_and_line(raw_dataset, mutate, message):
    drivers, _ = read_csvs(raw_dataset)
    with pytest.raises(LayoutError, match=message):
        validate_driver_list(mutate(drivers))


def test_malformed_sample_submission_is_named(raw_dataset):
    _, submission = read_csvs(raw_dataset)
    with pytest.raises(LayoutError, match="sample_submission.csv: expected the header 'img,c0"):
        _index(raw_dataset, sample_submission=submission.drop(columns="c9"))


def test_missing_or_empty_image_folder_is_named(tmp_path, raw_copy):
    from kedro.io import DatasetError

    with pytest.raises(DatasetError, match=f"image folder {tmp_path / 'nowhere'} does not exist"):
        ImageFolderDataset(str(tmp_path / "nowhere")).load()
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="is empty"):
        ImageFolderDataset(str(tmp_path / "empty")).load()
    import shutil

    shutil.rmtree(raw_copy / "imgs" / "test")
    with pytest.raises(LayoutError, match="imgs/test: no images"):
        _index(raw_copy)
