"""Nodes of ``lr_find``: the learning-rate range test of the main recipe on one fold's training drivers."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from statefarm.data.cache import ImageCache, check_cache_matches_index
from statefarm.data.splits import split_fold
from statefarm.evaluation import reports
from statefarm.evaluation.metrics import as_metric_history
from statefarm.modeling import lr_finder, training
from statefarm.modeling.augment import AugmentSpec
from statefarm.modeling.models import ModelConfig
from statefarm.modeling.optim import AnnealerConfig, OptimizerConfig, SchedulerConfig
from statefarm.modeling.regularization_tuning import apply_tuned_regularization
from statefarm.runtime.config import RuntimeConfig


def find_learning_rate(
    image_cache: ImageCache,
    image_index: pd.DataFrame,
    driver_folds: dict,
    tuned_augmentations: dict | None,
    tuned_regularization: dict | None,
    config: lr_finder.LrFindConfig,
    model: ModelConfig,
    optimizer: OptimizerConfig,
    scheduler: SchedulerConfig,
    annealer: AnnealerConfig,
    training_config: training.TrainingConfig,
    augment: AugmentSpec | None,
    runtime: RuntimeConfig,
    seed: int,
) -> pd.DataFrame:
    """The sweep of the main model's recipe as it trains (tuned augmentation and regularization included),
    on the training drivers of fold ``lr_find.fold``."""
    check_cache_matches_index(image_cache, image_index)
    labelled = image_index[(image_index["split"] == "train") & image_index["valid"]]
    train = training.labelled_rows(image_index, split_fold(labelled, driver_folds, config.fold)["train_drivers"])
    recipe = training.Recipe(model, optimizer, scheduler, annealer, training_config)
    recipe = apply_tuned_regularization(recipe, tuned_regularization, training_config.use_tuned_regularization)
    spec = training.choose_augmentations(tuned_augmentations, augment, training_config.use_tuned_augmentations)
    return training.find_learning_rate(image_cache, train, recipe, runtime, spec, seed, config)


def suggest_learning_rate(sweep: pd.DataFrame, optimizer: OptimizerConfig) -> dict:
    """The suggested rates, beside the one ``optimizer.lr`` trains at, as MLflow metrics ``lr_find.*``."""
    return as_metric_history({**lr_finder.suggest_lr(sweep), "configured_lr": optimizer.lr})


def plot_lr_sweep(sweep: pd.DataFrame, optimizer: OptimizerConfig, model: ModelConfig) -> Figure:
    return reports.lr_sweep_figure(sweep, lr_finder.suggest_lr(sweep), optimizer.lr, model.name)
