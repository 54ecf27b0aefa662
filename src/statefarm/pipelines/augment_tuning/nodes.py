"""Nodes of ``augment_tuning``: scan each transform on the sample, combine the winners."""

from __future__ import annotations

from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from statefarm.data.cache import ImageCache
from statefarm.data.submission import SubmissionConfig
from statefarm.evaluation import reports
from statefarm.evaluation.metrics import as_metric_history
from statefarm.modeling import augment_tuning
from statefarm.modeling.augment import AugmentSpec
from statefarm.modeling.models import ModelConfig
from statefarm.modeling.optim import AnnealerConfig, OptimizerConfig, SchedulerConfig
from statefarm.modeling.training import Recipe, TrainingConfig
from statefarm.runtime.config import RuntimeConfig


def tune_augmentations(
    image_cache: ImageCache,
    sample: pd.DataFrame,
    config: augment_tuning.TuningConfig,
    model: ModelConfig,
    optimizer: OptimizerConfig,
    scheduler: SchedulerConfig,
    runtime: RuntimeConfig,
    seed: int,
    submission: SubmissionConfig,
    augment: AugmentSpec | None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The scan table, and the tuned spec with the scores behind it, for the model that trains
    (``model``, ``optimizer``, ``scheduler``) unless ``augment_tuning`` names its own; the configured
    ``augment`` spec is the challenger the scan's choice must beat."""
    tuned_for = Recipe(model, optimizer, scheduler, AnnealerConfig(), TrainingConfig())
    return augment_tuning.scan_augmentations(
        image_cache, sample, config, tuned_for, runtime, seed, submission.clip, augment
    )


def record_augment_grid(config: augment_tuning.TuningConfig) -> dict[str, Any]:
    """The candidates the scan tries, as one readable artifact (not as dozens of MLflow parameters)."""
    return {name: candidate.model_dump() for name, candidate in config.candidates.items()}


def track_augment_scan(tuned_augmentations: dict[str, Any]) -> dict:
    """The scores without augmentation and of the combination, as MLflow metrics."""
    names = ("no_augmentation_valid_loss", "combined_valid_loss", "configured_valid_loss")
    return as_metric_history({name: tuned_augmentations[name] for name in names if name in tuned_augmentations})


def plot_augment_scan(scan: pd.DataFrame, tuned_augmentations: dict[str, Any]) -> Figure:
    return reports.augment_scan_figure(scan, tuned_augmentations)
