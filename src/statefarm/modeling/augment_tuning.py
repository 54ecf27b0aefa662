"""Tune augmentation one transform at a time on the driver sample, then combine the winners.

There is no rigorous way to choose augmentation (the lesson's point), so this is an
honest search: a trial without augmentation, then for each candidate transform one
trial per strength, every trial with the same seed, model and budget so their scores
compare. A transform is kept at its best strength only when that beats no augmentation
by more than ``margin``; the kept ones are combined and scored once more. The configured
``augment`` spec (a hand-written one) challenges the scan's choice on the same sample: when
it wins by more than ``margin``, training gets it instead.
With ``halving``, weak strengths stop early (successive halving, Optuna's pruner) and only
the trials that train to the end get their further seeds.
Regularization is not tuned here: a small sample needs more of it than the full data.
"""

from __future__ import annotations

import json
import logging
import math
import time
from typing import Any, Literal

import numpy as np
import optuna
import pandas as pd
from pydantic import Field

from statefarm.config import Params
from statefarm.data.cache import ImageCache
from statefarm.data.splits import check_disjoint
from statefarm.modeling.augment import AugmentSpec
from statefarm.modeling.models import ModelConfig
from statefarm.modeling.optim import AnnealerConfig, OptimizerConfig, SchedulerConfig
from statefarm.modeling.training import Recipe, TrainingConfig, fit_on_rows
from statefarm.runtime import tracking
from statefarm.runtime.config import RuntimeConfig
from statefarm.runtime.run_summary import format_duration

logger = logging.getLogger(__name__)

NO_AUGMENTATION = "no_augmentation"
CONFIGURED = "configured"
SCAN_COLUMNS = (
    "trial", "transform", "argument", "value", "spec", "valid_loss", "valid_loss_std", "valid_accuracy", "epochs",
    "status", "error",
)  # fmt: skip


class Candidate(Params):
    """One albumentations transform and the strengths to try for one of its arguments."""

    transform: str = Field(..., description="albumentations class name, e.g. Affine")
    argument: str = Field(..., description="the argument the grid varies, e.g. translate_percent")
    values: list[Any] = Field(..., min_length=1)
    fixed: dict[str, Any] = Field(default_factory=dict, description="other arguments, e.g. p")

    def spec(self, value: Any) -> AugmentSpec:
        return [{self.transform: {**self.fixed, self.argument: value}}]


class HalvingConfig(Params):
    """Successive halving: every trial's first seed is compared with the others' at rungs of epochs."""

    min_epochs: int = Field(1, ge=1, description="epochs every trial trains before its first comparison")
    reduction_factor: int = Field(
        3, ge=2, description="at each rung only the best 1/reduction_factor of the trials that reached it train on"
    )

    def study(self) -> optuna.Study:
        return halving_study(self.min_epochs, self.reduction_factor)


def halving_study(min_resource: int, reduction_factor: int) -> optuna.Study:
    """An in-memory study whose pruner stops the trials that fall behind (Optuna's ``SuccessiveHalvingPruner``)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the scans log each trial themselves
    pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=min_resource, reduction_factor=reduction_factor)
    return optuna.create_study(direction="minimize", pruner=pruner)


class TuningConfig(Params):
    """The scan: candidates, the keep-margin, and the recipe and budget every trial gets."""

    candidates: dict[str, Candidate]
    margin: float = Field(0.0, ge=0, description="log-loss improvement over no augmentation needed to keep a transform")
    repeats: int = Field(1, ge=1, description="seeds per trial; the score is their mean (short trials are noisy)")
    model: ModelConfig | None = Field(
        None, description="what every trial trains; null: the model the scan tunes for (architecture, weights, size)"
    )
    optimizer: OptimizerConfig | None = Field(None, description="null: the tuned model's")
    scheduler: SchedulerConfig | None = Field(None, description="null: the tuned model's")
    training: TrainingConfig = Field(..., description="the budget of one trial: epochs, batch size")
    halving: HalvingConfig | None = Field(None, description="stop weak trials early; null: every trial trains it all")
    combination: Literal["always", "when_better"] = Field(
        "always",
        description="always: train with every winner combined; when_better: only if the combination beats the best "
        "winner alone on the sample, else that one alone",
    )
    challenge_configured: bool = Field(
        True,
        description="score the configured `augment` spec as one more trial: training gets it instead of the scan's "
        "choice when it beats that on the sample by more than `margin`",
    )

    def recipe(self, tuned_for: Recipe) -> Recipe:
        """What each trial trains: the model the scan tunes for, less what the scan sets itself.

        Regularization stays off (no annealer; label smoothing and mixup are the budget's, off by
        default): it is tuned on the full data, as a sample needs more of it.
        """
        return Recipe(
            self.model or tuned_for.model,
            self.optimizer or tuned_for.optimizer,
            self.scheduler or tuned_for.scheduler,
            AnnealerConfig(),
            self.training,
        )


def _run_trial(
    name: str,
    spec: AugmentSpec,
    params: dict[str, Any],
    image_cache: ImageCache,
    train: pd.DataFrame,
    valid: pd.DataFrame,
    recipe: Recipe,
    repeats: int,
    where: RuntimeConfig,
    seed: int,
    clip: float,
    study: optuna.Study | None = None,
    prunable: bool = True,
) -> dict[str, Any]:
    """One trial: ``repeats`` seeds of ``recipe`` with ``spec``, scored by their mean final validation loss.

    In a ``study``, the first seed reports its validation loss after every epoch, and a
    ``prunable`` trial stops as soon as the study's pruner says so (status ``pruned``, its
    loss then recorded); the other seeds train only for a trial that was not stopped.
    """
    row = {**params, "trial": name, "spec": json.dumps(spec), "valid_loss": math.nan, "valid_loss_std": math.nan}
    row |= {"valid_accuracy": math.nan, "epochs": 0}
    pruning = study.ask() if study is not None else None

    def on_epoch(metrics: dict[str, float], epoch: int) -> None:
        row["epochs"] += 1
        if pruning is not None and seed_index == 0:
            pruning.report(metrics["valid_loss"], epoch)
            row["valid_loss"] = metrics["valid_loss"]
            if prunable and pruning.should_prune():
                raise optuna.TrialPruned(f"stopped after epoch {epoch}")

    try:
        trial_params = {**params, "spec": spec, "repeats": repeats, "model": recipe.model.name}
        with tracking.child_run(name, trial_params, {"stage": "augment_tuning"}) as log:
            finals = []
            for seed_index in range(repeats):
                try:
                    result = fit_on_rows(
                        image_cache, train, valid, recipe, where, spec, None, seed + seed_index, clip,
                        on_epoch=on_epoch, log_level=logging.DEBUG,
                    )  # fmt: skip
                except optuna.TrialPruned as stop:
                    study.tell(pruning, state=optuna.trial.TrialState.PRUNED)
                    log({"valid_loss": row["valid_loss"], "epochs": row["epochs"]})
                    return {**row, "status": "pruned", "error": str(stop)}
                finals.append(result.history[-1])
            losses = np.array([final["valid_loss"] for final in finals])
            scores = {
                "valid_loss": float(losses.mean()),
                "valid_loss_std": float(losses.std(ddof=1)) if len(losses) > 1 else math.nan,
                "valid_accuracy": float(np.mean([final["valid_accuracy"] for final in finals])),
            }
            log({name: value for name, value in scores.items() if not math.isnan(value)} | {"epochs": row["epochs"]})
    except Exception as error:  # a broken candidate is a failed trial, not a failed scan
        logger.warning("Trial %s failed: %s: %s", name, type(error).__name__, error)
        if pruning is not None:
            study.tell(pruning, state=optuna.trial.TrialState.FAIL)
        return {**row, "status": "failed", "error": f"{type(error).__name__}: {error}"}
    if pruning is not None:
        study.tell(pruning, float(finals[0]["valid_loss"]))
    return {**row, **scores, "status": "ok", "error": ""}


class ScanProgress:
    """Logs "trial k/N" after each trial, with the scan's estimated time to go."""

    def __init__(self, trials: int) -> None:
        self.trials, self.done, self.started = trials, 0, time.perf_counter()

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        self.done += 1
        elapsed = time.perf_counter() - self.started
        remaining = elapsed / self.done * max(self.trials - self.done, 0)
        stopped = f" ({row['error']})" if row["status"] == "pruned" else ""
        logger.info(
            "Trial %d/%d %-28s valid log loss %.4f%s | ETA %s",
            self.done, self.trials, row["trial"], row["valid_loss"], stopped, format_duration(remaining),
        )  # fmt: skip
        return row


def scan_augmentations(
    image_cache: ImageCache,
    sample: pd.DataFrame,
    config: TuningConfig,
    tuned_for: Recipe,
    where: RuntimeConfig,
    seed: int,
    clip: float,
    configured: AugmentSpec | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Run the scan on the sample's train drivers, scored on its validation drivers, each trial where ``where`` says.

    Each trial trains the model of ``tuned_for`` (architecture, pretrained weights, input size),
    unless ``config`` names another, for ``config.training``'s budget. ``configured`` (the
    ``augment`` spec training would use untuned) challenges the scan's choice, with
    ``config.challenge_configured``.

    Returns:
        ``(scan, tuned)``: one row per trial (no augmentation, each transform and
        strength, the combination), and the chosen spec with the scores behind the choice.
    """
    train = sample[sample["role"] == "train"].reset_index(drop=True)
    valid = sample[sample["role"] == "valid"].reset_index(drop=True)
    check_disjoint(train["subject"], valid["subject"])
    trial = {
        "image_cache": image_cache, "train": train, "valid": valid, "recipe": config.recipe(tuned_for),
        "repeats": config.repeats, "where": where, "seed": seed, "clip": clip,
    }  # fmt: skip

    challenger = configured if config.challenge_configured and configured else None
    # Every candidate value, the trial without augmentation, (usually) the combination and the challenger.
    progress = ScanProgress(
        2 + (challenger is not None) + sum(len(candidate.values) for candidate in config.candidates.values())
    )
    recipe = trial["recipe"]
    size = "x".join(map(str, recipe.model.input_size or image_cache.image_size))
    logger.info(
        "Augmentation scan: %d trials of %s at %s, %d epoch(s) x %d seed(s) each, on %d images of %d drivers",
        progress.trials, recipe.model.name, size, recipe.training.epochs, config.repeats,
        len(train), train["subject"].nunique(),
    )  # fmt: skip
    # One MLflow run for the scan, its trials under it: the run's own children stay its models.
    params = {"model": recipe.model.name, "input_size": size, "epochs": recipe.training.epochs,
              "repeats": config.repeats, "margin": config.margin}  # fmt: skip
    with tracking.child_run("augment_tuning", params, {"stage": "augment_scan"}) as log:
        scan, tuned = _scan(config, trial, progress, challenger)
        scores = ("no_augmentation_valid_loss", "combined_valid_loss", "configured_valid_loss")
        log(
            {name: tuned[name] for name in scores if name in tuned and not math.isnan(tuned[name])}
            | {"trials": len(scan)}
        )
    return scan, tuned


def keep_combination(
    chosen: dict[str, dict[str, Any]], singles: dict[str, AugmentSpec], combined: AugmentSpec, combined_loss: float
) -> tuple[AugmentSpec, str]:
    """The combination of the transforms that each beat no augmentation, when it scores at least as well on the
    sample as the best of them alone, and ``""``; else that transform's spec, and its name.

    ``chosen`` holds each kept transform's ``valid_loss``, ``singles`` its spec.
    """
    best = min(chosen, key=lambda name: chosen[name]["valid_loss"])
    return (combined, "") if combined_loss <= chosen[best]["valid_loss"] else (singles[best], best)


def keep_scan_choice(
    scan_spec: AugmentSpec, scan_loss: float, configured_spec: AugmentSpec, configured: dict[str, Any], margin: float
) -> tuple[AugmentSpec, str]:
    """The configured spec and ``"configured"`` when its trial (``configured``: its ``status`` and ``valid_loss``)
    beats the scan's choice on the sample by more than ``margin``, as a transform must beat no augmentation;
    else the scan's spec and ``"scan"``."""
    if configured["status"] == "ok" and scan_loss - configured["valid_loss"] > margin:
        return configured_spec, CONFIGURED
    return scan_spec, "scan"


def _scan(
    config: TuningConfig, trial: dict[str, Any], progress: ScanProgress, challenger: AugmentSpec | None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    study = config.halving.study() if config.halving is not None else None
    plain = progress(
        _run_trial(
            NO_AUGMENTATION,
            [],
            {"transform": "none", "argument": "", "value": ""},
            **trial,
            study=study,
            prunable=False,
        )
    )
    if plain["status"] != "ok":
        raise RuntimeError(f"the trial without augmentation failed: {plain['error']}")
    rows, chosen, combined_spec, singles = [plain], {}, [], {}
    for name, candidate in config.candidates.items():
        results = [
            progress(
                _run_trial(
                    f"{name}={json.dumps(value)}",
                    candidate.spec(value),
                    {"transform": name, "argument": candidate.argument, "value": json.dumps(value)},
                    **trial,
                    study=study,
                )
            )
            for value in candidate.values
        ]
        rows += results
        scored = [r for r in results if r["status"] == "ok"]
        if not scored:
            continue
        best = min(scored, key=lambda r: r["valid_loss"])
        if plain["valid_loss"] - best["valid_loss"] > config.margin:
            chosen[name] = {"value": json.loads(best["value"]), "valid_loss": best["valid_loss"]}
            combined_spec += json.loads(best["spec"])
            singles[name] = json.loads(best["spec"])

    tuned: dict[str, Any] = {
        "augment": combined_spec,
        "no_augmentation_valid_loss": plain["valid_loss"],
        "chosen": chosen,
        "margin": config.margin,
    }
    scan_loss = min((c["valid_loss"] for c in chosen.values()), default=plain["valid_loss"])  # of what it keeps
    if len(singles) > 1:
        combined = progress(
            _run_trial("combined", combined_spec, {"transform": "combined", "argument": "", "value": ""}, **trial)
        )
        rows.append(combined)
        tuned["combined_valid_loss"] = combined["valid_loss"]
        kept, alone = keep_combination(chosen, singles, combined_spec, combined["valid_loss"])
        if config.combination == "always" or not alone:
            scan_loss = combined["valid_loss"] if combined["status"] == "ok" else math.inf
        if alone:
            tuned["note"] = (
                f"the combination scores {combined['valid_loss']:.4f} on the sample, worse than {alone} alone "
                f"({chosen[alone]['valid_loss']:.4f}): "
            ) + (
                f"training uses {alone} alone"
                if config.combination == "when_better"
                else "training uses the combination still (augment_tuning.combination: always)"
            )
            logger.warning("Augmentation scan: %s", tuned["note"])
        if config.combination == "when_better":
            tuned["augment"] = kept
    elif not singles:
        tuned["note"] = "no transform beat no augmentation by more than the margin: train without augmentation"
    if challenger is not None:
        configured = progress(
            _run_trial(CONFIGURED, challenger, {"transform": CONFIGURED, "argument": "", "value": ""}, **trial)
        )
        rows.append(configured)
        tuned["configured_valid_loss"] = configured["valid_loss"]
        tuned["scan_valid_loss"] = scan_loss
        tuned["augment"], tuned["kept"] = keep_scan_choice(
            tuned["augment"], scan_loss, challenger, configured, config.margin
        )
        if tuned["kept"] == CONFIGURED:
            tuned["note"] = (
                f"the configured augment spec scores {configured['valid_loss']:.4f} on the sample, better than the "
                f"scan's choice ({scan_loss:.4f}) by more than the margin: training uses the configured spec"
            )
            logger.info("Augmentation scan: %s", tuned["note"])
    logger.info("Tuned augmentations: %s", json.dumps(tuned["augment"]))
    return pd.DataFrame(rows).loc[:, list(SCAN_COLUMNS)], tuned
