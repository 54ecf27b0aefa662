"""Nodes of ``sampling``: the folds of drivers, each fold's train/valid split, and the tuning sample."""

from __future__ import annotations

import pandas as pd

from statefarm.data import splits


def _labelled(image_index: pd.DataFrame) -> pd.DataFrame:
    return image_index[(image_index["split"] == "train") & image_index["valid"]]


def assign_folds(
    image_index: pd.DataFrame, split: splits.SplitConfig, sample: splits.SampleConfig, seed: int
) -> tuple[dict, pd.DataFrame]:
    """Give every labelled driver the fold that validates it; draw the tuning sample from the first fold's split.

    Both are made before either is written, so a sample that cannot be drawn leaves
    the previous folds and sample as they were, consistent with each other.
    """
    labelled = _labelled(image_index)
    driver_folds = splits.assign_folds(labelled, split, seed)
    first_split = splits.split_fold(labelled, driver_folds, split.folds[0])
    return driver_folds, splits.make_sample(labelled, first_split, sample, seed)


def split_by_driver(image_index: pd.DataFrame, driver_folds: dict, fold: int) -> dict:
    """One fold's split: its drivers validate, every other driver trains; none is on both sides."""
    return splits.split_fold(_labelled(image_index), driver_folds, fold)
