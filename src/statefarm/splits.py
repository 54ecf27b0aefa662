"""Split and sample by driver.

The same driver, in the same car, seconds apart, appears in hundreds of images;
a random image split puts near-copies on both sides and validation lies. Every
split here keeps each driver on one side only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
import pandas as pd
from pydantic import Field, model_validator
from sklearn.model_selection import StratifiedGroupKFold

from statefarm.config import Params

logger = logging.getLogger(__name__)


class SplitConfig(Params):
    """How to choose the validation drivers.

    Either name them (``valid_drivers``) or take fold ``fold`` of a stratified
    group K-fold over drivers (``n_folds``), seeded by the project seed.
    """

    valid_drivers: list[str] | None = None
    n_folds: int = Field(5, ge=2)
    fold: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _fold_in_range(self) -> SplitConfig:
        if self.fold >= self.n_folds:
            raise ValueError(f"fold must be below n_folds ({self.n_folds}), got {self.fold}")
        return self


class SampleConfig(Params):
    """A small, fast subset for tuning: a few drivers from each side, a few images per class."""

    train_drivers: int = Field(4, ge=1)
    valid_drivers: int = Field(2, ge=1)
    images_per_class: int = Field(50, ge=1, description="per side (train, valid) and class")


class DriverLeakError(ValueError):
    """A driver is on both sides of a split."""


def check_disjoint(train_drivers: Iterable[str], valid_drivers: Iterable[str]) -> None:
    """Raise ``DriverLeakError`` naming every driver that is on both sides."""
    shared = sorted(set(train_drivers) & set(valid_drivers))
    if shared:
        raise DriverLeakError(
            f"driver(s) {shared} are in both the train and the validation split; "
            "a driver on both sides makes validation scores meaningless"
        )


def assign_driver_folds(subjects: pd.Series, labels: pd.Series, n_folds: int, seed: int) -> dict[str, int]:
    """Give each driver a fold, balancing the class mix of the folds.

    Args:
        subjects: Driver of each labelled image.
        labels: Class of each labelled image.
        n_folds: Number of folds, at most the number of drivers.
        seed: Shuffles drivers between folds.

    Returns:
        Fold of each driver.
    """
    drivers = subjects.nunique()
    if n_folds > drivers:
        raise ValueError(f"split.n_folds is {n_folds} but there are only {drivers} drivers")
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    folds: dict[str, int] = {}
    for fold, (_, valid_rows) in enumerate(splitter.split(subjects, labels, groups=subjects)):
        for driver in subjects.iloc[valid_rows].unique():
            folds[str(driver)] = fold
    return dict(sorted(folds.items()))


def split_by_driver(train_images: pd.DataFrame, config: SplitConfig, seed: int) -> dict:
    """Choose the validation drivers; every other driver trains.

    Args:
        train_images: Labelled images, with ``subject`` and ``label``.
        config: Named drivers or a fold.
        seed: Seeds the fold assignment.

    Returns:
        A JSON-ready record: strategy, train and valid drivers, image counts and,
        for K-fold, every driver's fold.
    """
    subjects = train_images["subject"].astype(str)
    drivers = sorted(subjects.unique())
    if config.valid_drivers is not None:
        unknown = sorted(set(config.valid_drivers) - set(drivers))
        if unknown:
            raise ValueError(f"split.valid_drivers names unknown driver(s) {unknown}; drivers are {drivers}")
        valid_drivers = sorted(set(config.valid_drivers))
        record = {"strategy": "named_drivers"}
    else:
        folds = assign_driver_folds(subjects, train_images["label"], config.n_folds, seed)
        valid_drivers = sorted(d for d, fold in folds.items() if fold == config.fold)
        record = {"strategy": "stratified_group_kfold", "n_folds": config.n_folds, "fold": config.fold}
        record["driver_folds"] = folds
    train_drivers = [d for d in drivers if d not in valid_drivers]
    if not train_drivers:
        raise ValueError("split.valid_drivers leaves no driver to train on")
    check_disjoint(train_drivers, valid_drivers)
    in_valid = subjects.isin(valid_drivers)
    record |= {
        "train_drivers": train_drivers,
        "valid_drivers": valid_drivers,
        "n_train_images": int((~in_valid).sum()),
        "n_valid_images": int(in_valid.sum()),
    }
    logger.info(
        "Split by driver: %d drivers (%d images) train, %d drivers %s (%d images) validate",
        len(train_drivers), record["n_train_images"], len(valid_drivers), valid_drivers,
        record["n_valid_images"],
    )  # fmt: skip
    return record


def make_sample(train_images: pd.DataFrame, driver_split: dict, config: SampleConfig, seed: int) -> pd.DataFrame:
    """Draw a small sample by driver: drivers from each side of the split, images per class.

    Args:
        train_images: Labelled images, with ``img``, ``subject`` and ``label``.
        driver_split: The record from ``split_by_driver``.
        config: How many drivers and images.
        seed: Seeds the draw.

    Returns:
        ``img, subject, label, role`` with role ``train`` or ``valid``.
    """
    check_disjoint(driver_split["train_drivers"], driver_split["valid_drivers"])
    rng = np.random.default_rng(seed)
    parts = []
    for role, wanted in (("train", config.train_drivers), ("valid", config.valid_drivers)):
        available = driver_split[f"{role}_drivers"]
        if wanted > len(available):
            raise ValueError(
                f"sample.{role}_drivers is {wanted} but the split has only {len(available)} {role} drivers"
            )
        chosen = sorted(rng.choice(available, size=wanted, replace=False).tolist())
        images = train_images[train_images["subject"].isin(chosen)]
        shuffled = images.sample(frac=1, random_state=int(rng.integers(2**31)))
        per_class = shuffled.groupby("label").head(config.images_per_class).sort_values(["label", "img"])
        parts.append(per_class.assign(role=role))
    sample = pd.concat(parts, ignore_index=True).loc[:, ["img", "subject", "label", "role"]]
    check_disjoint(sample.loc[sample["role"] == "train", "subject"], sample.loc[sample["role"] == "valid", "subject"])
    logger.info(
        "Sample: %d train images of %s, %d valid images of %s",
        int((sample["role"] == "train").sum()), sorted(sample.loc[sample["role"] == "train", "subject"].unique()),
        int((sample["role"] == "valid").sum()), sorted(sample.loc[sample["role"] == "valid", "subject"].unique()),
    )  # fmt: skip
    return sample.astype({"img": str, "subject": str, "label": "int64", "role": str})
