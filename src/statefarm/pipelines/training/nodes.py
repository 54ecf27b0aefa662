"""Nodes of ``training``: fit a classifier on the training drivers, report on the validation drivers."""

from __future__ import annotations

from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from statefarm.data.cache import ImageCache, check_cache_matches_index
from statefarm.data.submission import SubmissionConfig
from statefarm.evaluation import pseudo_labels as pseudo
from statefarm.evaluation import reports
from statefarm.evaluation.blending import MemberRecipe, member_recipe, member_runtime
from statefarm.modeling import training
from statefarm.modeling.augment import AugmentSpec
from statefarm.modeling.checkpoints import CheckpointStore, differences
from statefarm.modeling.models import ModelConfig
from statefarm.modeling.optim import AnnealerConfig, OptimizerConfig, SchedulerConfig
from statefarm.modeling.regularization_tuning import apply_tuned_regularization
from statefarm.runtime import run_summary
from statefarm.runtime.config import RuntimeConfig


def _recipe(
    model: ModelConfig,
    optimizer: OptimizerConfig,
    scheduler: SchedulerConfig,
    annealer: AnnealerConfig,
    training_config: training.TrainingConfig,
    tuned_regularization: dict | None,
    member: MemberRecipe | None,
) -> training.Recipe:
    """The recipe a model trains with: the main one (with the tuned regularization, unless
    ``training.use_tuned_regularization`` is false), or a blend member's keys over it (tuned for the main
    model, the regularization is not a member's)."""
    main = training.Recipe(model, optimizer, scheduler, annealer, training_config)
    if member is not None:
        return member_recipe(main, member)
    return apply_tuned_regularization(main, tuned_regularization, training_config.use_tuned_regularization)


def recipe_changes(
    saved_model: dict,
    params: dict[str, Any],
    member: MemberRecipe | None = None,
    tuned_regularization: dict | None = None,
) -> list[tuple]:
    """``(key, trained with, now)`` wherever ``params`` now give another recipe than ``saved_model`` was trained with.

    ``params`` holds the groups a training node reads, validated (``model``, ``optimizer``,
    ``scheduler``, ``annealer``, ``training``, ``augment``, ``seed``, and ``pseudo_label`` for
    pseudo-labelled training); ``member`` is a blend member's own keys, ``tuned_regularization``
    the kept keys of ``regularization_tuning``. A tuned augmentation is the scan's output, not a
    parameter, and is left out.
    """
    sections = (params[key] for key in ("model", "optimizer", "scheduler", "annealer", "training"))
    recipe = _recipe(*sections, tuned_regularization, member)
    current = training.describe_recipe(recipe, params["augment"], params["seed"])
    trained = saved_model.get("run") or {}
    if recipe.training.use_tuned_augmentations:
        current.pop("augment")
    if "pseudo_label" in params:
        config = params["pseudo_label"]
        current["pseudo_labels"] = {"fraction": config.fraction, "labelled_share": config.labelled_share}
    saved = {key: trained.get(key) for key in current}
    if isinstance(saved.get("pseudo_labels"), dict):
        saved["pseudo_labels"] = {key: saved["pseudo_labels"].get(key) for key in current["pseudo_labels"]}
    return differences(saved, current)


def train_model(
    image_cache: ImageCache,
    image_index: pd.DataFrame,
    driver_split: dict,
    checkpoints: CheckpointStore,
    tuned_augmentations: dict | None,
    tuned_regularization: dict | None,
    model: ModelConfig,
    optimizer: OptimizerConfig,
    scheduler: SchedulerConfig,
    annealer: AnnealerConfig,
    training_config: training.TrainingConfig,
    augment: AugmentSpec | None,
    seed: int,
    submission: SubmissionConfig,
    runtime: RuntimeConfig,
    member: MemberRecipe | None = None,
    run_name: str = "model",
    pseudo_training: training.PseudoTraining | None = None,
) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """Train, checkpointing every epoch; return the best model, the history and its validation logits.

    Augments with ``tuned_augmentations`` when the tuning stage has made it, else ``augment``;
    the main model regularizes with ``tuned_regularization``'s keys when they exist.
    A ``member`` of the blend (``blend.members.<name>``) puts its keys over the recipe's and the ``runtime``'s.
    """
    check_cache_matches_index(image_cache, image_index)
    recipe = _recipe(model, optimizer, scheduler, annealer, training_config, tuned_regularization, member)
    augment = training.choose_augmentations(tuned_augmentations, augment, recipe.training.use_tuned_augmentations)
    return training.train_classifier(
        image_cache, image_index, driver_split, recipe, member_runtime(runtime, member), augment, checkpoints, seed,
        clip=submission.clip, run_name=run_name, pseudo=pseudo_training,
    )  # fmt: skip


def train_model_with_pseudo_labels(
    image_cache: ImageCache,
    image_index: pd.DataFrame,
    driver_split: dict,
    checkpoints: CheckpointStore,
    tuned_augmentations: dict | None,
    tuned_regularization: dict | None,
    pseudo_labels: pd.DataFrame,
    pseudo_label_sources: dict,
    init_model: dict,
    config: pseudo.PseudoLabelConfig,
    model: ModelConfig,
    optimizer: OptimizerConfig,
    scheduler: SchedulerConfig,
    annealer: AnnealerConfig,
    training_config: training.TrainingConfig,
    augment: AugmentSpec | None,
    seed: int,
    submission: SubmissionConfig,
    runtime: RuntimeConfig,
    member: MemberRecipe | None = None,
    run_name: str = "model",
) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """As ``train_model``, with a fixed share of every batch pseudo-labelled, after checking for leaks.

    The pseudo-labels must come from models that never saw this split's validation
    drivers, and ``init_model`` (used when ``pseudo_label.init`` is ``baseline``) too.
    """
    pseudo.check_pseudo_labels(pseudo_labels, image_index, driver_split)
    pseudo.check_pseudo_label_sources(pseudo_label_sources, driver_split)
    seen = set(pseudo_label_sources["train_drivers"])
    init = init_model if config.init == "baseline" else None
    if init is not None:
        init_drivers = init["model_info"].get("train_drivers")
        if init_drivers is None:
            raise pseudo.PseudoLabelLeakError("the initial model does not record its training drivers; retrain it")
        pseudo.check_pseudo_label_sources(
            {"models": ["the initial model"], "train_drivers": init_drivers}, driver_split
        )
        seen |= set(init_drivers)
    mixing = training.PseudoTraining(
        pseudo_labels, config.fraction, init, tuple(sorted(seen)), labelled_share=config.labelled_share
    )
    return train_model(
        image_cache, image_index, driver_split, checkpoints, tuned_augmentations, tuned_regularization, model,
        optimizer, scheduler, annealer, training_config, augment, seed, submission, runtime, member,
        run_name=run_name, pseudo_training=mixing,
    )  # fmt: skip


def report_training(
    history: pd.DataFrame, valid_predictions: pd.DataFrame, model: str = "", pseudo_labelled: bool = False
) -> tuple[Figure, Figure, pd.DataFrame]:
    """Learning curves, the confusion matrix and per-class scores on the validation drivers."""
    best_loss, kept = history["valid_loss"].min(), run_summary.best_epoch(history)
    title = f"{model}, validation drivers: log loss {best_loss:.4f} (epoch {kept})"
    return (
        reports.learning_curves_figure(history, model, pseudo_labelled),
        reports.confusion_matrix_figure(valid_predictions, title),
        reports.per_class_report(valid_predictions),
    )
