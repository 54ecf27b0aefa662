"""The competition files as Kaggle ships them: validate the CSVs, index every image.

Layout, under the raw folder::

    imgs/train/c0..c9/*.jpg    labelled images, one folder per class
    imgs/test/*.jpg            unlabelled images of other drivers
    driver_imgs_list.csv       subject,classname,img for every train image
    sample_submission.csv      img,c0..c9 for every test image
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pandas as pd

from statefarm.data.images import ImageCheck

logger = logging.getLogger(__name__)

CLASS_NAMES: tuple[str, ...] = tuple(f"c{k}" for k in range(10))
DRIVER_LIST_FILE = "driver_imgs_list.csv"
SAMPLE_SUBMISSION_FILE = "sample_submission.csv"
DRIVER_LIST_COLUMNS = ("subject", "classname", "img")
SUBMISSION_COLUMNS = ("img", *CLASS_NAMES)
IMAGE_INDEX_COLUMNS = (
    "img", "split", "subject", "classname", "label", "path",
    "width", "height", "file_size", "mtime_ns", "valid",
)  # fmt: skip
REJECTED_COLUMNS = ("img", "split", "path", "reason")

# The listing of the image folder, as ImageFolderDataset loads it.
FILE_LISTING_COLUMNS = ("relpath", "path", "file_size", "mtime_ns")

_ROWS_SHOWN = 5


class LayoutError(ValueError):
    """A competition file is not in the shape Kaggle ships it in."""


def _csv_lines(frame: pd.DataFrame, mask: pd.Series, column: str) -> str:
    """Describe the flagged rows by their line in the CSV file (header is line 1)."""
    rows = frame.index[mask.to_numpy()]
    shown = ", ".join(f"line {row + 2} ({frame.at[row, column]!r})" for row in rows[:_ROWS_SHOWN])
    more = f" and {len(rows) - _ROWS_SHOWN} more" if len(rows) > _ROWS_SHOWN else ""
    return shown + more


def validate_driver_list(driver_list: pd.DataFrame) -> pd.DataFrame:
    """Check ``driver_imgs_list.csv``: its columns, its classes, one row per image.

    Args:
        driver_list: The CSV as read, with Kaggle's header ``subject,classname,img``.

    Returns:
        The three columns as strings, in file order.

    Raises:
        LayoutError: Naming the file, the problem and the offending lines.
    """
    missing = [column for column in DRIVER_LIST_COLUMNS if column not in driver_list.columns]
    if missing:
        raise LayoutError(
            f"{DRIVER_LIST_FILE}: missing column(s) {missing}; expected the header "
            f"'{','.join(DRIVER_LIST_COLUMNS)}', found {list(driver_list.columns)}"
        )
    frame = driver_list.loc[:, list(DRIVER_LIST_COLUMNS)].reset_index(drop=True)
    blank = frame.isna().any(axis=1) | (frame.astype(str).apply(lambda c: c.str.strip()) == "").any(axis=1)
    if blank.any():
        raise LayoutError(f"{DRIVER_LIST_FILE}: empty fields at {_csv_lines(frame, blank, 'img')}")
    frame = frame.astype(str)
    unknown = ~frame["classname"].isin(CLASS_NAMES)
    if unknown.any():
        raise LayoutError(
            f"{DRIVER_LIST_FILE}: unknown class at {_csv_lines(frame, unknown, 'classname')}; "
            f"classes are {', '.join(CLASS_NAMES)}"
        )
    duplicated = frame["img"].duplicated(keep=False)
    if duplicated.any():
        raise LayoutError(
            f"{DRIVER_LIST_FILE}: an image is listed more than once, at {_csv_lines(frame, duplicated, 'img')}"
        )
    if frame.empty:
        raise LayoutError(f"{DRIVER_LIST_FILE}: no rows")
    return frame


def validate_sample_submission(sample_submission: pd.DataFrame) -> pd.Series:
    """Check ``sample_submission.csv`` and return its test image names, in file order.

    Raises:
        LayoutError: On a header other than ``img,c0..c9``, no rows, or a repeated image.
    """
    if tuple(sample_submission.columns) != SUBMISSION_COLUMNS:
        raise LayoutError(
            f"{SAMPLE_SUBMISSION_FILE}: expected the header '{','.join(SUBMISSION_COLUMNS)}', "
            f"found '{','.join(map(str, sample_submission.columns))}'"
        )
    frame = sample_submission.reset_index(drop=True)
    if frame.empty:
        raise LayoutError(f"{SAMPLE_SUBMISSION_FILE}: no rows")
    duplicated = frame["img"].duplicated(keep=False)
    if duplicated.any():
        raise LayoutError(
            f"{SAMPLE_SUBMISSION_FILE}: an image is listed more than once, at {_csv_lines(frame, duplicated, 'img')}"
        )
    return frame["img"].astype(str)


def locate_files(files: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Sort a listing of ``imgs/`` into train files, test files and misplaced files.

    Args:
        files: One row per file, with ``relpath`` relative to ``imgs/`` (``train/c3/x.jpg``).

    Returns:
        ``(train, test, misplaced)``: train rows gain ``img`` and ``folder_class``, test
        rows gain ``img``, misplaced rows gain ``img`` and ``reason``.
    """
    parts = files["relpath"].str.split("/")
    depth = parts.str.len()
    top = parts.str[0]
    is_train = (top == "train") & (depth == 3) & parts.str[1].isin(CLASS_NAMES)
    is_test = (top == "test") & (depth == 2)
    train = files[is_train].assign(img=parts[is_train].str[2], folder_class=parts[is_train].str[1])
    test = files[is_test].assign(img=parts[is_test].str[1])
    misplaced = files[~(is_train | is_test)].assign(
        img=parts[~(is_train | is_test)].str[-1],
        reason="unexpected location: expected imgs/train/c0..c9/NAME or imgs/test/NAME",
    )
    return train, test, misplaced


def _rejections(frame: pd.DataFrame, split: str, reason: str | pd.Series) -> pd.DataFrame:
    return pd.DataFrame({"img": frame["img"], "split": split, "path": frame.get("path", ""), "reason": reason})


def build_image_index(
    files: pd.DataFrame,
    driver_list: pd.DataFrame,
    sample_submission: pd.DataFrame,
    check_images: Callable[[list[str]], list[ImageCheck]],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Join the image files with the two CSVs and check every image.

    A train image that fails any check is left out of the index: it must not be
    trained on. A test image that fails is kept, flagged ``valid=False``, so the
    submission can still give it a row.

    Args:
        files: Listing of ``imgs/`` (see ``FILE_LISTING_COLUMNS``).
        driver_list: ``driver_imgs_list.csv`` as read.
        sample_submission: ``sample_submission.csv`` as read.
        check_images: Checks a list of paths, e.g. ``check_jpeg`` in parallel.

    Returns:
        ``(image_index, rejected_images)`` with ``IMAGE_INDEX_COLUMNS`` and
        ``REJECTED_COLUMNS``.

    Raises:
        LayoutError: If a CSV is malformed, or ``imgs/train`` or ``imgs/test`` has no file.
    """
    drivers = validate_driver_list(driver_list)
    test_names = validate_sample_submission(sample_submission)
    train_files, test_files, misplaced = locate_files(files)
    if train_files.empty:
        raise LayoutError("imgs/train: no images in imgs/train/c0..c9")
    if test_files.empty:
        raise LayoutError("imgs/test: no images")

    checks = check_images([*train_files["path"], *test_files["path"]])
    checked = pd.DataFrame(checks, columns=["width", "height", "problem"])
    train_files = pd.concat(
        [train_files.reset_index(drop=True), checked.iloc[: len(train_files)].reset_index(drop=True)],
        axis=1,
    )
    test_files = pd.concat(
        [test_files.reset_index(drop=True), checked.iloc[len(train_files) :].reset_index(drop=True)],
        axis=1,
    )

    train = drivers.merge(train_files, on="img", how="outer", indicator=True)
    not_on_disk = train["_merge"] == "left_only"
    not_listed = train["_merge"] == "right_only"
    wrong_folder = (train["_merge"] == "both") & (train["classname"] != train["folder_class"])
    unreadable = (train["_merge"] == "both") & ~wrong_folder & train["problem"].notna()
    train_ok = (train["_merge"] == "both") & ~wrong_folder & ~unreadable
    rejected = [
        _rejections(misplaced, "unknown", misplaced["reason"]),
        _rejections(train[not_on_disk], "train", f"listed in {DRIVER_LIST_FILE} but not in imgs/train"),
        _rejections(train[not_listed], "train", f"in imgs/train but not listed in {DRIVER_LIST_FILE}"),
        _rejections(
            train[wrong_folder],
            "train",
            "in folder "
            + train.loc[wrong_folder, "folder_class"].astype(str)
            + f" but {DRIVER_LIST_FILE} says "
            + train.loc[wrong_folder, "classname"].astype(str),
        ),
        _rejections(train[unreadable], "train", train.loc[unreadable, "problem"]),
    ]

    test = pd.DataFrame({"img": test_names}).merge(test_files, on="img", how="outer", indicator=True)
    not_in_submission = test["_merge"] == "right_only"
    test_missing = test["_merge"] == "left_only"
    test.loc[test_missing, "problem"] = f"listed in {SAMPLE_SUBMISSION_FILE} but not in imgs/test"
    test_bad = ~not_in_submission & test["problem"].notna()
    rejected += [
        _rejections(test[not_in_submission], "test", f"in imgs/test but not listed in {SAMPLE_SUBMISSION_FILE}"),
        _rejections(test[test_bad], "test", test.loc[test_bad, "problem"]),
    ]

    train = train[train_ok].assign(
        split="train",
        label=lambda f: f["classname"].str[1:].astype(int),
        valid=True,
    )
    test = test[~not_in_submission].assign(
        split="test", subject=pd.NA, classname=pd.NA, label=-1, valid=lambda f: f["problem"].isna()
    )
    index = pd.concat([train, test], ignore_index=True).loc[:, list(IMAGE_INDEX_COLUMNS)]
    index = index.astype(
        {
            "img": str,
            "split": str,
            "subject": "string",
            "classname": "string",
            "label": "int64",
            "path": "string",
            "width": "Int64",
            "height": "Int64",
            "file_size": "Int64",
            "mtime_ns": "Int64",
            "valid": bool,
        }  # fmt: skip
    )
    duplicated = index["img"].duplicated(keep=False)
    if duplicated.any():
        names = sorted(index.loc[duplicated, "img"].unique())[:_ROWS_SHOWN]
        raise LayoutError(f"image names appear in both imgs/train and imgs/test: {names}")
    rejected_images = pd.concat(rejected, ignore_index=True).loc[:, list(REJECTED_COLUMNS)]
    _log_summary(index, rejected_images)
    return index, rejected_images


def readable_test_images(index: pd.DataFrame) -> list[str]:
    """The test images the models predict, in the index's order: those that decoded."""
    return index.loc[(index["split"] == "test") & index["valid"], "img"].tolist()


def _log_summary(index: pd.DataFrame, rejected: pd.DataFrame) -> None:
    train = index[index["split"] == "train"]
    test = index[index["split"] == "test"]
    logger.info(
        "Indexed %d train images of %d drivers and %d test images (%d of them flagged invalid)",
        len(train), train["subject"].nunique(), len(test), int((~test["valid"]).sum()),
    )  # fmt: skip
    for reason, count in rejected["reason"].value_counts().items():
        logger.warning("Rejected %d image(s): %s", count, reason)
