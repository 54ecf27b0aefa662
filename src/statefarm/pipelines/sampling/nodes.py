"""Nodes of ``sampling``: the folds of drivers, each fold's train/valid split, and the tuning sample."""

from __future__ import annotations

from typing import Any

import pandas as pd

from statefarm import splits
from statefarm.config import parse_params


def _labelled(image_index: pd.DataFrame) -> pd.DataFrame:
    return image_index[(image_index["split"] == "train") & image_index["valid"]]


def assign_folds(image_index: pd.DataFrame, split: dict[str, Any], seed: int) -> dict:
    """Give every labelled driver the fold that validates it."""
    config = parse_params(splits.SplitConfig, split, "split")
    return splits.assign_folds(_labelled(image_index), config, seed)


def split_by_driver(image_index: pd.DataFrame, driver_folds: dict, fold: int) -> dict:
    """One fold's split: its drivers validate, every other driver trains; none is on both sides."""
    return splits.split_fold(_labelled(image_index), driver_folds, fold)


def make_sample(image_index: pd.DataFrame, driver_split: dict, sample: dict[str, Any], seed: int) -> pd.DataFrame:
    """Draw a few drivers from each side of the split and a few images per class."""
    config = parse_params(splits.SampleConfig, sample, "sample")
    return splits.make_sample(_labelled(image_index), driver_split, config, seed)
