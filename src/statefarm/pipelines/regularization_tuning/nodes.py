"""Nodes of ``regularization_tuning``: every arm out of fold on all labelled images, the kept keys for training."""

from __future__ import annotations

from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from statefarm.data.cache import ImageCache, check_cache_matches_index
from statefarm.data.splits import split_fold
from statefarm.data.submission import SubmissionConfig
from statefarm.evaluation import reports
from statefarm.evaluation.inference import InferenceConfig
from statefarm.modeling import regularization_tuning as tuning
from statefarm.modeling.augment import AugmentSpec
from statefarm.modeling.models import ModelConfig
from statefarm.modeling.optim import AnnealerConfig, OptimizerConfig, SchedulerConfig
from statefarm.modeling.training import Recipe, TrainingConfig, choose_augmentations, labelled_rows
from statefarm.runtime.config import RuntimeConfig


def tune_regularization(
    image_cache: ImageCache,
    image_index: pd.DataFrame,
    driver_folds: dict,
    tuned_augmentations: dict | None,
    config: tuning.RegularizationTuningConfig,
    model: ModelConfig,
    optimizer: OptimizerConfig,
    scheduler: SchedulerConfig,
    annealer: AnnealerConfig,
    training_config: TrainingConfig,
    augment: AugmentSpec | None,
    runtime: RuntimeConfig,
    seed: int,
    submission: SubmissionConfig,
    inference: InferenceConfig,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The arms' table and the kept keys, for the main recipe as it trains (its augmentation included),
    on the folds of ``driver_folds`` (``regularization_tuning.folds``: all of them unless named), each arm's
    out-of-fold logits calibrated as ``inference`` calibrates the chain's."""
    check_cache_matches_index(image_cache, image_index)
    labelled = image_index[(image_index["split"] == "train") & image_index["valid"]]
    folds = []
    for fold in config.folds or sorted(set(driver_folds["driver_folds"].values())):
        split = split_fold(labelled, driver_folds, fold)
        train, valid = (labelled_rows(image_index, split[side]) for side in ("train_drivers", "valid_drivers"))
        folds.append((fold, train, valid))
    recipe = Recipe(model, optimizer, scheduler, annealer, training_config)
    spec = choose_augmentations(tuned_augmentations, augment, training_config.use_tuned_augmentations)
    return tuning.tune_regularization(
        image_cache, folds, config, recipe, spec, runtime, seed, submission.clip, inference.calibrate
    )


def plot_regularization_tuning(table: pd.DataFrame, tuned: dict[str, Any]) -> Figure:
    return reports.regularization_tuning_figure(table, tuned)
