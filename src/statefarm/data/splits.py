"""Split and sample by driver.

The same driver, in the same car, seconds apart, appears in hundreds of images;
a random image split puts near-copies on both sides and validation lies. Every
split here keeps each driver on one side only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator
from sklearn.model_selection import StratifiedGroupKFold

from statefarm.config import Params

logger = logging.getLogger(__name__)


class SplitConfig(Params):
    """How to choose the validation drivers.

    ``fold: all`` trains one model per fold of a stratified group K-fold over drivers
    (``n_folds``, seeded by the project seed), so that every labelled driver is
    validated once, by a model that never saw it. ``fold: <k>`` runs fold ``k`` alone
    (a smoke test: a few drivers are too few to steer by); ``valid_drivers`` names the
    validation drivers of a single split instead.
    """

    valid_drivers: list[str] | None = None
    n_folds: int = Field(5, ge=2)
    fold: int | Literal["all"] = "all"

    @model_validator(mode="after")
    def _fold_in_range(self) -> SplitConfig:
        if self.fold != "all" and not 0 <= self.fold < self.n_folds:
            raise ValueError(f"fold must be 'all' or from 0 to n_folds - 1 ({self.n_folds - 1}), got {self.fold}")
        return self

    @property
    def folds(self) -> list[int]:
        """The folds a run trains: all of them, one, or the single split of named drivers (fold 0)."""
        if self.valid_drivers is not None:
            return [0]
        return list(range(self.n_folds)) if self.fold == "all" else [self.fold]


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


def assign_folds(train_images: pd.DataFrame, config: SplitConfig, seed: int) -> dict:
    """Give every labelled driver the fold that validates it.

    Args:
        train_images: Labelled images, with ``subject`` and ``label``.
        config: Named validation drivers, or a K-fold.
        seed: Seeds the fold assignment.

    Returns:
        A JSON-ready record: ``strategy``, ``folds`` (the folds this run trains) and
        ``driver_folds``, each driver's fold (``null`` for a driver that only ever trains,
        as with named validation drivers).
    """
    subjects = train_images["subject"].astype(str)
    drivers = sorted(subjects.unique())
    if config.valid_drivers is not None:
        unknown = sorted(set(config.valid_drivers) - set(drivers))
        if unknown:
            raise ValueError(f"split.valid_drivers names unknown driver(s) {unknown}; drivers are {drivers}")
        if set(config.valid_drivers) >= set(drivers):
            raise ValueError("split.valid_drivers leaves no driver to train on")
        driver_folds = {d: (0 if d in config.valid_drivers else None) for d in drivers}
        record = {"strategy": "named_drivers"}
    else:
        driver_folds = assign_driver_folds(subjects, train_images["label"], config.n_folds, seed)
        record = {"strategy": "stratified_group_kfold", "n_folds": config.n_folds}
    record |= {"folds": config.folds, "driver_folds": driver_folds}
    images = subjects.value_counts()
    for fold in config.folds:
        valid = [d for d, f in driver_folds.items() if f == fold]
        logger.info(
            "Fold %d: %d drivers train, %d drivers %s (%d images) validate",
            fold, len(drivers) - len(valid), len(valid), valid, int(images[valid].sum()),
        )  # fmt: skip
    return record


def split_fold(train_images: pd.DataFrame, driver_folds: dict, fold: int) -> dict:
    """The train/valid drivers of one fold: its drivers validate, every other driver trains.

    Args:
        train_images: Labelled images, with ``subject``.
        driver_folds: The record from ``assign_folds``.
        fold: Which fold.

    Returns:
        A JSON-ready record: ``fold``, train and valid drivers, and their image counts.
    """
    if fold not in driver_folds["folds"]:
        raise ValueError(
            f"fold {fold} is not among the folds the split parameters plan ({driver_folds['folds']}); "
            "the pipelines were built for other `split` parameters than the run reads"
        )
    folds = driver_folds["driver_folds"]
    valid_drivers = sorted(d for d, f in folds.items() if f == fold)
    train_drivers = sorted(d for d, f in folds.items() if f != fold)
    if not valid_drivers or not train_drivers:
        raise ValueError(f"fold {fold} has {len(train_drivers)} training and {len(valid_drivers)} validation drivers")
    check_disjoint(train_drivers, valid_drivers)
    in_valid = train_images["subject"].astype(str).isin(valid_drivers)
    return {
        "strategy": driver_folds["strategy"],
        "fold": fold,
        "train_drivers": train_drivers,
        "valid_drivers": valid_drivers,
        "n_train_images": int((~in_valid).sum()),
        "n_valid_images": int(in_valid.sum()),
    }


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
