"""Nodes of ``augment_tuning``: scan each transform on the sample, combine the winners."""

from __future__ import annotations

from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from statefarm.config import parse_params
from statefarm.data.cache import ImageCache
from statefarm.evaluation import reports
from statefarm.evaluation.metrics import as_metric_history
from statefarm.modeling import augment_tuning
from statefarm.modeling.training import Recipe
from statefarm.runtime.config import RuntimeConfig


def tune_augmentations(
    image_cache: ImageCache,
    sample: pd.DataFrame,
    params: dict[str, Any],
    model: dict[str, Any],
    optimizer: dict[str, Any],
    scheduler: dict[str, Any],
    runtime: dict[str, Any],
    seed: int,
    submission: dict[str, Any],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The scan table, and the tuned spec with the scores behind it, for the model that trains
    (``model``, ``optimizer``, ``scheduler``) unless ``augment_tuning`` names its own."""
    config = parse_params(augment_tuning.TuningConfig, params, "augment_tuning")
    tuned_for = Recipe.from_params(
        {"model": model, "optimizer": optimizer, "scheduler": scheduler, "annealer": {}, "training": {}}
    )
    where = parse_params(RuntimeConfig, runtime, "runtime")
    return augment_tuning.scan_augmentations(
        image_cache, sample, config, tuned_for, where, seed, clip=submission["clip"]
    )


def record_augment_grid(params: dict[str, Any]) -> dict[str, Any]:
    """The candidates the scan tries, as one readable artifact (not as dozens of MLflow parameters)."""
    config = parse_params(augment_tuning.TuningConfig, params, "augment_tuning")
    return {name: candidate.model_dump() for name, candidate in config.candidates.items()}


def track_augment_scan(tuned_augmentations: dict[str, Any]) -> dict:
    """The scores without augmentation and of the combination, as MLflow metrics."""
    names = ("no_augmentation_valid_loss", "combined_valid_loss")
    return as_metric_history({name: tuned_augmentations[name] for name in names if name in tuned_augmentations})


def plot_augment_scan(scan: pd.DataFrame, tuned_augmentations: dict[str, Any]) -> Figure:
    return reports.augment_scan_figure(scan, tuned_augmentations)
