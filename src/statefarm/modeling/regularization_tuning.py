"""Tune regularization on the full data, out of fold over every driver: one key at a time, then the winners combined.

The lesson's order: augmentation is tuned on a small sample, but a sample needs more
regularization than the full data, so weight decay, dropout, drop-path, label smoothing
and mixup are tuned on every labelled image. Each arm is the main recipe with one key
changed, trained on every fold of the split (the same folds and seeds as the unchanged
recipe, the reference) and scored by the out-of-fold log loss of its last epoch, calibrated
as the chain calibrates what it submits (each driver at a temperature fitted without it), so
that a key which only moves the model's confidence, as label smoothing does, gains nothing
that calibration would have given anyway. An arm's
gain is paired fold by fold against the reference's, so that the folds' own spread (one
fold's drivers are harder than another's) is not taken for noise; a value is kept only
when its mean gain exceeds ``margin`` and ``noise`` standard errors of those differences.
With ``halving``, an arm whose running out-of-fold loss falls behind the others' on the
same first folds stops (Optuna's ``SuccessiveHalvingPruner``, folds as its steps).
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

import numpy as np
import optuna
import pandas as pd
from pydantic import Field, field_validator

from statefarm.config import Params, with_keys
from statefarm.data.cache import ImageCache
from statefarm.data.layout import CLASS_NAMES
from statefarm.evaluation import cross_validation as cv
from statefarm.evaluation.metrics import log_loss
from statefarm.modeling.augment import AugmentSpec
from statefarm.modeling.augment_tuning import ScanProgress, halving_study
from statefarm.modeling.training import Recipe, fit_on_rows
from statefarm.runtime import tracking
from statefarm.runtime.config import RuntimeConfig

logger = logging.getLogger(__name__)

REFERENCE = "reference"
RECIPE_SECTIONS = tuple(field.name for field in fields(Recipe))
TABLE_COLUMNS = (
    "arm", "key", "value", "oof_log_loss", "gain", "gain_std_error", "folds", "fold_log_losses", "status", "error",
)  # fmt: skip


class RegularizationCandidate(Params):
    """One recipe key and the values to try for it, each from the main recipe with only that key changed."""

    key: str = Field(..., description="<section>.<field> of the recipe, e.g. optimizer.weight_decay")
    values: list[Any] = Field(..., min_length=1)

    @field_validator("key")
    @classmethod
    def _a_recipe_key(cls, key: str) -> str:
        section, _, name = key.partition(".")
        if section not in RECIPE_SECTIONS or not name or "." in name:
            raise ValueError(f"{key!r} must be <section>.<field> with a section of {list(RECIPE_SECTIONS)}")
        return key


class FoldHalvingConfig(Params):
    """Successive halving over folds: every arm's running out-of-fold loss is compared with the others' on the
    same first folds."""

    min_folds: int = Field(1, ge=1, description="folds every arm trains before its first comparison")
    reduction_factor: int = Field(
        3, ge=2, description="at each rung only the best 1/reduction_factor of the arms that reached it train on"
    )


class RegularizationTuningConfig(Params):
    """The arms, the folds they train on, and how large a gain must be to be kept."""

    candidates: dict[str, RegularizationCandidate | None] = Field(
        ..., description="name -> key and values; null leaves a candidate of conf/base out"
    )
    folds: list[int] | None = Field(None, description="the folds every arm trains; null: every fold of `split`")
    repeats: int = Field(1, ge=1, description="seeds per fold; an arm's fold loss is their mean")
    margin: float = Field(0.0, ge=0, description="out-of-fold log-loss gain over the reference needed to keep a value")
    noise: float = Field(
        2.0, ge=0, description="standard errors of the fold-by-fold gains a kept value's mean gain must exceed"
    )
    halving: FoldHalvingConfig | None = Field(None, description="stop arms that fall behind on the first folds")

    @field_validator("candidates")
    @classmethod
    def _without_left_out(cls, candidates: dict) -> dict[str, RegularizationCandidate]:
        return {name: candidate for name, candidate in candidates.items() if candidate is not None}


def arm_recipe(recipe: Recipe, changes: Mapping[str, Any]) -> Recipe:
    """``recipe`` with each ``<section>.<field>`` of ``changes`` set; errors name the key."""
    sections: dict[str, dict[str, Any]] = defaultdict(dict)
    for key, value in changes.items():
        section, _, name = key.partition(".")
        sections[section][name] = value
    return Recipe(**{
        section: with_keys(getattr(recipe, section), sections.get(section, {}), f"regularization_tuning.{section}")
        for section in RECIPE_SECTIONS
    })  # fmt: skip


def apply_tuned_regularization(recipe: Recipe, tuned: Mapping[str, Any] | None, use_tuned: bool) -> Recipe:
    """The recipe with the kept keys of ``regularization_tuning``'s result, when there is one and it is wanted."""
    if not use_tuned or not tuned or not tuned.get("changes"):
        return recipe
    logger.info("Regularizing with the tuned keys: %s", json.dumps(tuned["changes"]))
    return arm_recipe(recipe, tuned["changes"])


def paired_gain(reference: list[float], arm: list[float], images: list[int]) -> tuple[float, float]:
    """The arm's mean gain over the reference (positive: lower log loss), weighted by each fold's images,
    and the standard error of that mean from the fold-by-fold differences (NaN with one fold)."""
    gains, weights = np.asarray(reference) - np.asarray(arm), np.asarray(images, dtype=float)
    mean = float(np.average(gains, weights=weights))
    if len(gains) < 2:
        return mean, math.nan
    spread = float(np.sqrt(np.average((gains - mean) ** 2, weights=weights) * len(gains) / (len(gains) - 1)))
    return mean, spread / math.sqrt(len(gains))


def is_kept(gain: float, std_error: float, margin: float, noise: float) -> bool:
    """A gain beyond the margin and beyond ``noise`` standard errors (with one fold, the margin alone)."""
    return gain > margin and (math.isnan(std_error) or gain > noise * std_error)


def _train_arm(
    name: str,
    changes: dict[str, Any],
    folds: list[tuple[int, pd.DataFrame, pd.DataFrame]],
    context: dict[str, Any],
    study: optuna.Study | None,
) -> dict[str, Any]:
    """Train ``changes`` on every fold; its out-of-fold log loss and each fold's, or where it stopped."""
    config: RegularizationTuningConfig = context["config"]
    row = {"arm": name, "fold_log_losses": [], "oof_log_loss": math.nan, "status": "ok", "error": ""}
    pruning = study.ask() if study is not None and name != REFERENCE else None
    predictions: list[list[pd.DataFrame]] = [[] for _ in range(config.repeats)]  # per seed, each fold's so far
    try:
        recipe = arm_recipe(context["recipe"], changes)
        with tracking.child_run(name, {"changes": json.dumps(changes)}, {"stage": "regularization_tuning"}) as log:
            for step, (fold, train, valid) in enumerate(folds):
                for repeat, seed_predictions in enumerate(predictions):
                    result = fit_on_rows(
                        context["image_cache"], train, valid, recipe, context["where"], context["augment"], None,
                        context["seed"] + repeat, context["clip"], log_level=logging.DEBUG,
                    )  # fmt: skip
                    seed_predictions.append(_fold_predictions(fold, valid, result.last_valid_logits.numpy()))
                row["fold_log_losses"] = fold_log_losses(predictions, context["calibrate"])
                images = [len(valid) for _, _, valid in folds[: step + 1]]
                row["oof_log_loss"] = float(np.average(row["fold_log_losses"], weights=images))
                log({f"fold_{fold}.valid_loss": row["fold_log_losses"][-1]})
                if pruning is not None:
                    pruning.report(row["oof_log_loss"], step + 1)
                    if step + 1 < len(folds) and pruning.should_prune():
                        study.tell(pruning, state=optuna.trial.TrialState.PRUNED)
                        return {**row, "status": "pruned", "error": f"stopped after {step + 1} fold(s)"}
            log({"oof_log_loss": row["oof_log_loss"]})
    except Exception as error:  # a value a model cannot take is a failed arm, not a failed stage
        logger.warning("Arm %s failed: %s: %s", name, type(error).__name__, error)
        if pruning is not None:
            study.tell(pruning, state=optuna.trial.TrialState.FAIL)
        return {**row, "status": "failed", "error": f"{type(error).__name__}: {error}"}
    if pruning is not None:
        study.tell(pruning, row["oof_log_loss"])
    return row


def _fold_predictions(fold: int, valid: pd.DataFrame, logits: np.ndarray) -> pd.DataFrame:
    return valid.loc[:, ["subject", "label"]].assign(
        fold=fold, **{column: logits[:, k] for k, column in enumerate(cv.LOGITS)}
    )


def fold_log_losses(predictions: list[list[pd.DataFrame]], calibrate: bool) -> list[float]:
    """Each fold's log loss, the mean over seeds, from ``predictions`` (per seed, each fold's validation logits).

    With ``calibrate``, a seed's out-of-fold logits are first calibrated as the chain calibrates its own
    (``cross_validation.fit_calibration``: each driver at a temperature fitted without it); else plain softmax.
    """
    per_seed = []
    for seed_predictions in predictions:
        oof = pd.concat(seed_predictions, ignore_index=True)
        calibration = cv.fit_calibration(oof, calibrate, log_level=logging.DEBUG)
        calibrated = cv.calibrate_out_of_fold(oof, calibration)
        per_seed.append([
            log_loss(rows.loc[:, list(CLASS_NAMES)].to_numpy(), rows["label"].to_numpy())
            for _, rows in calibrated.groupby("fold", sort=False)
        ])  # fmt: skip
    return [float(loss) for loss in np.mean(per_seed, axis=0)]


def tune_regularization(
    image_cache: ImageCache,
    folds: list[tuple[int, pd.DataFrame, pd.DataFrame]],
    config: RegularizationTuningConfig,
    recipe: Recipe,
    augment: AugmentSpec | None,
    where: RuntimeConfig,
    seed: int,
    clip: float,
    calibrate: bool = True,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Score the reference and every arm on ``folds`` (``(fold, train rows, valid rows)``); keep each key's best
    value when it beats the reference beyond the noise, then score the kept values together. Each arm's
    out-of-fold logits are calibrated first when ``calibrate`` (``inference.calibrate``), as the chain's are.

    Returns:
        ``(table, tuned)``: one row per arm, and the kept ``changes`` with the scores behind them.
    """
    context = {"image_cache": image_cache, "config": config, "recipe": recipe, "augment": augment, "where": where,
               "seed": seed, "clip": clip, "calibrate": calibrate}  # fmt: skip
    images = [len(valid) for _, _, valid in folds]
    halving = config.halving
    study = halving_study(halving.min_folds, halving.reduction_factor) if halving is not None else None
    arms = [  # a value equal to the recipe's own is the reference itself
        (name, c.key, value)
        for name, c in config.candidates.items()
        for value in c.values
        if arm_recipe(recipe, {c.key: value}) != recipe
    ]
    progress = ScanProgress(2 + len(arms))
    logger.info(
        "Regularization tuning: %d arms of %s, each on %d fold(s) of all labelled images x %d seed(s)",
        len(arms) + 1, recipe.model.name, len(folds), config.repeats,
    )  # fmt: skip
    params = {"model": recipe.model.name, "folds": len(folds), "repeats": config.repeats, "margin": config.margin,
              "noise": config.noise, "calibrated": calibrate}  # fmt: skip
    with tracking.child_run("regularization_tuning", params, {"stage": "regularization_scan"}) as log:
        reference = _scored(_train_arm(REFERENCE, {}, folds, context, study), None, images, progress)
        if reference["status"] != "ok":
            raise RuntimeError(f"the reference recipe failed: {reference['error']}")
        rows, kept = [reference], {}
        for name, key, value in arms:
            row = _train_arm(f"{name}={json.dumps(value)}", {key: value}, folds, context, study)
            rows.append(_scored({**row, "key": key, "value": json.dumps(value)}, reference, images, progress))
        for name, candidate in config.candidates.items():
            scored = [r for r in rows if r.get("key") == candidate.key and r["status"] == "ok"]
            best = min(scored, key=lambda r: r["oof_log_loss"], default=None)
            if best is not None and is_kept(best["gain"], best["gain_std_error"], config.margin, config.noise):
                kept[name] = best
        tuned = _choose(kept, rows, reference, folds, context, images, progress)
        log({"reference_oof_log_loss": reference["oof_log_loss"], "tuned_oof_log_loss": tuned["oof_log_loss"]})
    table = pd.DataFrame(rows).reindex(columns=list(TABLE_COLUMNS))
    return table.assign(fold_log_losses=table["fold_log_losses"].map(json.dumps)), tuned


def _scored(row: dict[str, Any], reference: dict[str, Any] | None, images: list[int], progress: ScanProgress) -> dict:
    row = {"key": "", "value": "", "gain": math.nan, "gain_std_error": math.nan, **row}
    row["folds"] = len(row["fold_log_losses"])
    if reference is not None and row["status"] == "ok":
        row["gain"], row["gain_std_error"] = paired_gain(reference["fold_log_losses"], row["fold_log_losses"], images)
    progress({"trial": row["arm"], "valid_loss": row["oof_log_loss"], "status": row["status"], "error": row["error"]})
    return row


def _choose(kept, rows, reference, folds, context, images, progress) -> dict[str, Any]:
    """Every kept value together when that beats the reference beyond the noise as well, else the best one alone."""
    config: RegularizationTuningConfig = context["config"]
    loss = reference["oof_log_loss"]
    tuned = {"changes": {}, "reference_oof_log_loss": loss, "oof_log_loss": loss, "chosen": {},
             "margin": config.margin, "noise": config.noise, "calibrated": context["calibrate"]}  # fmt: skip
    if not kept:
        tuned["note"] = "no value beat the reference recipe beyond the noise: train with it unchanged"
        return tuned
    best = min(kept.values(), key=lambda r: r["oof_log_loss"])
    choice = {row["key"]: json.loads(row["value"]) for row in kept.values()}
    if len(kept) > 1:
        combined = _train_arm("combined", choice, folds, context, None)
        combined = _scored({**combined, "key": "combined", "value": json.dumps(choice)}, reference, images, progress)
        rows.append(combined)
        if combined["status"] != "ok" or combined["oof_log_loss"] > best["oof_log_loss"]:
            tuned["note"] = (
                f"the kept values together scored {combined['oof_log_loss']:.4f}, no better than {best['arm']} alone "
                f"({best['oof_log_loss']:.4f}): training uses {best['arm']} alone"
            )
            logger.warning("Regularization tuning: %s", tuned["note"])
            choice, kept = {best["key"]: json.loads(best["value"])}, {"best": best}
        else:
            best = combined
    tuned |= {
        "changes": choice,
        "oof_log_loss": best["oof_log_loss"],
        "chosen": {row["arm"]: {"gain": row["gain"], "gain_std_error": row["gain_std_error"]} for row in kept.values()},
    }
    logger.info("Tuned regularization: %s (out of fold %.4f, reference %.4f)", json.dumps(choice),
                tuned["oof_log_loss"], reference["oof_log_loss"])  # fmt: skip
    return tuned
