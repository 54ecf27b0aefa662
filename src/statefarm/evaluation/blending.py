"""A blend of several architectures: their recipes, and their predictions pooled with weights fitted out of fold.

Two architectures trained on the same drivers make different mistakes, and the mean of
their predictions beats either. Each member of ``blend.members`` trains every fold like
the main model, from the main recipe with the member's own keys put over it; the blend is
a weighted geometric mean, ``softmax(sum_m w_m log p_m)`` with every ``w_m >= 0``. Its log
loss is convex in ``w`` (a multinomial logistic regression with one weight per model on
fixed features), so the weights are fitted exactly, and their sum acts as a temperature.

The blend's out-of-fold score gives each fold's images the weights fitted on the other
folds' images alone, as the neighbour smoothing is chosen: weights fitted on the images
they score would flatter. The test blend uses the weights fitted on every fold.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import fields
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator
from scipy.optimize import minimize
from scipy.special import log_softmax

from statefarm.config import Params, with_keys
from statefarm.evaluation.cross_validation import LOGITS, PROBABILITIES
from statefarm.evaluation.metrics import log_loss
from statefarm.modeling.training import Recipe
from statefarm.runtime.config import RuntimeConfig

logger = logging.getLogger(__name__)

LOG_FLOOR = 1e-6  # of a model's probability, before its log


class MemberRecipe(Params):
    """The keys of a member's recipe that differ from the main one, section by section (``model``, ...),
    and of the ``runtime`` it trains with (its precision, say)."""

    model: dict[str, Any] = {}
    optimizer: dict[str, Any] = {}
    scheduler: dict[str, Any] = {}
    annealer: dict[str, Any] = {}
    training: dict[str, Any] = {}
    runtime: dict[str, Any] = {}


class BlendConfig(Params):
    """Other architectures trained beside the main model, each fold, and blended with it."""

    members: dict[str, MemberRecipe | None] = Field(
        {}, description="name -> recipe keys over the main recipe; null leaves a member out; none: no blend"
    )
    teacher: Literal["own", "blend"] = Field(
        "own", description="who labels the test images for each model's pseudo stage: its own baseline, or the blend"
    )

    @field_validator("members")
    @classmethod
    def _names_are_namespaces(cls, members: dict[str, MemberRecipe | None]) -> dict[str, MemberRecipe]:
        for name in members:
            if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or name == "blend" or name.startswith("fold_"):
                raise ValueError(
                    f"member name {name!r} must be lower-case letters, digits and _, start with a letter, "
                    "and be neither blend nor fold_<k>: it names the member's datasets (baseline.<name>.fold_0, ...)"
                )
        return {name: member for name, member in members.items() if member is not None}  # null: left out


def member_recipe(main: Recipe, member: MemberRecipe | None, key: str = "") -> Recipe:
    """A member's recipe: each section of the main one with the member's keys put over it (none: the main
    recipe); errors name ``<key><section>.<field>``."""
    if member is None:
        return main
    return Recipe(**{
        field.name: with_keys(getattr(main, field.name), getattr(member, field.name), key + field.name)
        for field in fields(Recipe)
    })  # fmt: skip


def member_runtime(runtime: RuntimeConfig, member: MemberRecipe | None, key: str = "runtime") -> RuntimeConfig:
    """Where a model trains: the run's ``runtime`` with a blend member's own ``runtime`` keys put over it;
    errors name ``key``."""
    return runtime if member is None else with_keys(runtime, member.runtime, key)


def floored_log(probabilities: np.ndarray) -> np.ndarray:
    """A model's log-probabilities as the blend pools them, each probability floored at ``LOG_FLOOR``."""
    return np.log(np.clip(np.asarray(probabilities, dtype=np.float64), LOG_FLOOR, 1.0))


def _log_probabilities(table: pd.DataFrame) -> np.ndarray:
    return floored_log(table.loc[:, PROBABILITIES].to_numpy())


def blend_loss(weights: np.ndarray, log_probabilities: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """The log loss of the blend with ``weights``, and its gradient in them.

    Args:
        weights: ``(models,)``.
        log_probabilities: ``(models, images, classes)``.
        labels: ``(images,)`` class indices.
    """
    rows = np.arange(len(labels))
    pooled = pool(log_probabilities, weights)
    expected = np.einsum("nc,mnc->m", np.exp(pooled), log_probabilities)  # each model's log p under the blend
    return -pooled[rows, labels].mean(), (expected - log_probabilities[:, rows, labels].sum(axis=1)) / len(labels)


def fit_blend_weights(log_probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The weights ``w >= 0`` of the lowest log loss of ``softmax(sum_m w_m log p_m)`` (see ``blend_loss``)."""
    models = len(log_probabilities)
    result = minimize(
        blend_loss, np.full(models, 1.0 / models), args=(log_probabilities, labels), jac=True,
        method="L-BFGS-B", bounds=[(0.0, None)] * models,
    )  # fmt: skip
    if not result.success:
        logger.warning("Blend weights: the fit stopped early (%s); keeping its last weights", result.message)
    return result.x


def pool(log_probabilities: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``log softmax(sum_m w_m log p_m)``: the blend's log-probabilities, ``(images, classes)``."""
    return log_softmax(np.tensordot(weights, log_probabilities, axes=1), axis=1)


def _aligned(tables: Mapping[str, pd.DataFrame], what: str, columns: list[str]) -> list[pd.DataFrame]:
    """The tables sorted by image, checked to hold the same images (and the same ``columns`` for them)."""
    names = list(tables)
    sorted_tables = [tables[name].sort_values("img", ignore_index=True) for name in names]
    first = sorted_tables[0]
    for name, table in zip(names[1:], sorted_tables[1:], strict=True):
        if not table["img"].equals(first["img"]):
            raise ValueError(f"{what}: {name} and {names[0]} predicted different images; they cannot be blended")
        for column in columns:
            if not (table[column].to_numpy() == first[column].to_numpy()).all():
                raise ValueError(
                    f"{what}: {name} and {names[0]} disagree on the {column!r} of an image; "
                    "blending them would score some images with a model that saw their driver"
                )
    return sorted_tables


def blend_out_of_fold(oof_predictions: Mapping[str, pd.DataFrame]) -> tuple[pd.DataFrame, dict]:
    """The members' out-of-fold predictions blended, each fold with weights fitted on the other folds.

    Args:
        oof_predictions: Per model, its ``oof_predictions`` (as submitted: calibrated, smoothed).

    Returns:
        The blend's OOF table (``img, subject, label, fold``, the blend's log-probabilities as
        ``logit_*`` and its probabilities), and the weights: ``all_folds`` (what the test
        blend uses), ``fold_<k>`` (what scored fold k), and each model's and the blend's log loss.

    Raises:
        ValueError: The models were validated on different images, or in different folds.
    """
    names = list(oof_predictions)
    tables = _aligned(oof_predictions, "out of fold", ["fold", "label"])
    stacked = np.stack([_log_probabilities(table) for table in tables])
    first = tables[0]
    labels, folds = first["label"].to_numpy(), first["fold"].to_numpy()
    blended = np.empty(stacked.shape[1:])
    weights: dict[str, Any] = {"models": names}
    for fold in np.unique(folds):
        held_out = folds == fold
        if held_out.all():  # one fold: no other images to fit on, so the untuned mean
            fold_weights = np.full(len(names), 1.0 / len(names))
            logger.warning("Blend: one fold only, scored with equal weights; weights fitted on it would flatter")
        else:
            fold_weights = fit_blend_weights(stacked[:, ~held_out], labels[~held_out])
        blended[held_out] = pool(stacked[:, held_out], fold_weights)
        weights[f"fold_{fold}"] = dict(zip(names, fold_weights.tolist(), strict=True))
    all_folds = fit_blend_weights(stacked, labels)
    weights["all_folds"] = dict(zip(names, all_folds.tolist(), strict=True))
    weights["log_loss"] = {name: log_loss(np.exp(stacked[m]), labels) for m, name in enumerate(names)}
    weights["log_loss"]["blend"] = log_loss(np.exp(blended), labels)
    logger.info(
        "Blend of %s: out-of-fold log loss %.4f (each alone: %s); weights on every fold %s",
        ", ".join(names), weights["log_loss"]["blend"],
        ", ".join(f"{weights['log_loss'][name]:.4f}" for name in names),
        ", ".join(f"{name} {w:.2f}" for name, w in weights["all_folds"].items()),
    )  # fmt: skip
    probabilities = np.exp(blended)
    table = first.loc[:, ["img", "subject", "label", "fold"]].assign(
        **{column: blended[:, k] for k, column in enumerate(LOGITS)},
        **{column: probabilities[:, k] for k, column in enumerate(PROBABILITIES)},
    )
    return table, weights


def blend_test_predictions(test_predictions: Mapping[str, pd.DataFrame], weights: Mapping[str, float]) -> pd.DataFrame:
    """The models' test probabilities pooled with ``weights`` (``blend_out_of_fold``'s ``all_folds``)."""
    missing = sorted(set(test_predictions) ^ set(weights))
    if missing:
        raise ValueError(f"blend weights and test predictions name different models: {missing}")
    tables = _aligned(test_predictions, "test", [])
    stacked = np.stack([_log_probabilities(table) for table in tables])
    probabilities = np.exp(pool(stacked, np.array([weights[name] for name in test_predictions])))
    return (
        pd.DataFrame(probabilities, columns=PROBABILITIES)
        .assign(img=tables[0]["img"].to_numpy())
        .loc[:, ["img", *PROBABILITIES]]
    )
