"""Out-of-fold scores over every driver, calibration fitted on them, and the fold ensemble.

Each fold's model predicts its own validation drivers, which it never saw; together
the folds predict every labelled image exactly once. That out-of-fold (OOF) score,
with its spread across drivers, is the number to steer by: one fold of four drivers
is too few and too lucky. The submission is the mean of the fold models.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd
from scipy.special import log_softmax, softmax

from statefarm.data.layout import CLASS_NAMES
from statefarm.data.splits import DriverLeakError
from statefarm.evaluation.inference import fit_temperature
from statefarm.evaluation.metrics import probability_scores
from statefarm.evaluation.neighbours import smooth

logger = logging.getLogger(__name__)

LOGITS = [f"logit_{name}" for name in CLASS_NAMES]
PROBABILITIES = list(CLASS_NAMES)


class OutOfFoldError(ValueError):
    """The folds' validation predictions do not cover the labelled images once each, from unseen drivers."""


def collect_out_of_fold(
    fold_predictions: Mapping[int, pd.DataFrame],
    fold_splits: Mapping[int, dict],
    image_index: pd.DataFrame,
    complete: bool,
) -> pd.DataFrame:
    """Every fold's validation logits in one table, each image predicted by a model that never saw its driver.

    Args:
        fold_predictions: Per fold, ``img, subject, label, logit_*`` of its validation drivers.
        fold_splits: Per fold, the split its model trained on.
        image_index: Every image; its usable labelled ones are what a complete OOF covers.
        complete: Whether every fold ran, so that every usable labelled image must be covered.

    Returns:
        ``img, subject, label, fold, logit_*``, one row per image.

    Raises:
        DriverLeakError: A fold's predictions include a driver its model trained on.
        OutOfFoldError: An image is predicted twice, or (``complete``) not at all.
    """
    parts = []
    for fold, predictions in sorted(fold_predictions.items()):
        split = fold_splits[fold]
        subjects = set(predictions["subject"].astype(str))
        seen = sorted(subjects & set(split["train_drivers"]))
        if seen:
            raise DriverLeakError(f"fold {fold}'s model trained on driver(s) {seen} and also predicts them out of fold")
        stray = sorted(subjects - set(split["valid_drivers"]))
        if stray:
            raise OutOfFoldError(f"fold {fold}'s validation predictions include driver(s) {stray} outside its split")
        parts.append(predictions.loc[:, ["img", "subject", "label", *LOGITS]].assign(fold=fold))
    oof = pd.concat(parts, ignore_index=True)
    twice = oof.loc[oof["img"].duplicated(), "img"]
    if not twice.empty:
        raise OutOfFoldError(
            f"{len(twice)} image(s) are predicted by more than one fold, e.g. {twice.iloc[:3].tolist()}"
        )
    labelled = image_index.loc[(image_index["split"] == "train") & image_index["valid"], "img"]
    missing = sorted(set(labelled) - set(oof["img"]))
    if complete and missing:
        raise OutOfFoldError(f"{len(missing)} usable labelled image(s) have no out-of-fold prediction: {missing[:3]}")
    logger.info(
        "Out of fold: %d of %d labelled images, %d drivers, %d fold(s)",
        len(oof), len(labelled), oof["subject"].nunique(), len(parts),
    )  # fmt: skip
    return oof.loc[:, ["img", "subject", "label", "fold", *LOGITS]]


def check_predictions_are_the_models(model: Mapping, valid_predictions: pd.DataFrame) -> None:
    """Raise unless ``valid_predictions`` score the validation loss that ``model``'s checkpoint recorded.

    Training writes a fold's model and its validation logits together, but a partial run,
    or a checkpoint copied back by hand, can pair a model with another run's logits. The
    out-of-fold report, calibration and blend would then describe a model the test images
    never meet: a number that flatters (or wrongs) the submission.

    Raises:
        OutOfFoldError: The two disagree beyond float rounding.
    """
    labels = valid_predictions["label"].to_numpy()
    log_p = log_softmax(valid_predictions.loc[:, LOGITS].to_numpy(np.float64), axis=1)
    scored = float(-log_p[np.arange(len(labels)), labels].mean())
    recorded = float(model["metrics"]["valid_loss"])
    if not math.isclose(scored, recorded, abs_tol=1e-3):
        drivers = sorted(set(valid_predictions["subject"].astype(str)))
        raise OutOfFoldError(
            f"the validation predictions of drivers {drivers} score log loss {scored:.4f}, but the model recorded "
            f"{recorded:.4f} on them: they come from another run. Retrain this fold (its train_model node) so "
            "that its model and predictions are written together"
        )


def _temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    return fit_temperature(logits, labels)["temperature"]


def _held_out_temperatures(oof: pd.DataFrame, mode: str) -> np.ndarray:
    """Each image's temperature fitted without its own driver: shared (all other drivers) or its fold's others."""
    logits, labels = oof.loc[:, LOGITS].to_numpy(np.float64), oof["label"].to_numpy()
    temperatures = np.ones(len(oof))
    for driver, rows in oof.groupby("subject").groups.items():
        fit_on = oof["subject"] != driver
        if mode == "per_fold":
            fit_on &= oof["fold"] == oof.loc[rows[0], "fold"]
        if fit_on.any():
            temperatures[oof.index.get_indexer(rows)] = _temperature(logits[fit_on], labels[fit_on])
    return temperatures


def _calibrated(oof: pd.DataFrame, temperatures: np.ndarray) -> np.ndarray:
    return softmax(oof.loc[:, LOGITS].to_numpy(np.float64) / temperatures[:, None], axis=1)


def fit_calibration(oof: pd.DataFrame, enabled: bool = True, log_level: int = logging.INFO) -> dict:
    """Choose and fit a softmax temperature on the out-of-fold logits: one shared, or one per fold.

    The choice is made on held-out drivers: each driver is scored with a temperature
    fitted without it (on every other driver, or on its fold's other drivers), since a
    temperature scored on the images it was fitted to always flatters the finer choice.
    The kept temperatures are then fitted on all the out-of-fold images.

    Returns:
        A JSON-ready record: ``mode`` (``none``, ``shared`` or ``per_fold``), ``temperatures``
        per fold (as ``"<k>"``), ``temperatures_without_fold`` (one shared temperature fitted
        on the other folds' images, for each fold's pseudo-labels: 1 with ``mode: none``),
        and the held-out log loss of each mode.
    """
    folds = sorted(oof["fold"].unique().tolist())
    labels = oof["label"].to_numpy()
    held_out = {"none": probability_scores(_calibrated(oof, np.ones(len(oof))), labels, 0.0)["log_loss"]}
    if enabled:
        for mode in ("shared", "per_fold"):
            probabilities = _calibrated(oof, _held_out_temperatures(oof, mode))
            held_out[mode] = probability_scores(probabilities, labels, 0.0)["log_loss"]
    mode = min(held_out, key=held_out.get)
    logits = oof.loc[:, LOGITS].to_numpy(np.float64)
    if mode == "shared":
        shared = _temperature(logits, labels)
        temperatures = dict.fromkeys(folds, shared)
    elif mode == "per_fold":
        temperatures = {k: _temperature(logits[oof["fold"] == k], labels[oof["fold"] == k]) for k in folds}
    else:
        temperatures = dict.fromkeys(folds, 1.0)
    without_fold = {}
    for k in folds:
        other = (oof["fold"] != k).to_numpy()
        without_fold[k] = _temperature(logits[other], labels[other]) if mode != "none" and other.any() else 1.0
    logger.log(
        log_level,
        "Calibration: %s (held-out-driver log loss %s); temperatures %s",
        mode, {k: round(v, 4) for k, v in held_out.items()}, {k: round(t, 3) for k, t in temperatures.items()},
    )  # fmt: skip
    return {
        "mode": mode,
        "temperatures": {str(k): float(t) for k, t in temperatures.items()},
        "temperatures_without_fold": {str(k): float(t) for k, t in without_fold.items()},
        "held_out_log_loss": held_out,
    }


def temperature_without_fold(calibration: dict, fold: int, kind: str) -> float:
    """The temperature fitted on every fold's images but ``fold``'s: what calibrates its pseudo-labels.

    Raises:
        ValueError: ``calibration`` was written before it recorded these (rerun ``<kind>.collect_out_of_fold``).
    """
    temperatures = calibration.get("temperatures_without_fold")
    if temperatures is None or str(fold) not in temperatures:
        raise ValueError(
            f"{kind}'s calibration has no temperature fitted without fold {fold}: it predates them or is of other "
            f"folds. Rerun {kind}.collect_out_of_fold"
        )
    return temperatures[str(fold)]


def calibrate_out_of_fold(oof: pd.DataFrame, calibration: dict) -> pd.DataFrame:
    """The OOF table with calibrated probabilities, each driver's from a temperature fitted without it.

    These are the honest out-of-fold probabilities: the temperatures the submission uses
    were fitted on these very images, and scoring them with those would flatter.
    """
    mode = calibration["mode"]
    temperatures = np.ones(len(oof)) if mode == "none" else _held_out_temperatures(oof, mode)
    probabilities = _calibrated(oof, temperatures)
    return oof.assign(**{name: probabilities[:, k] for k, name in enumerate(PROBABILITIES)})


def _scores(rows: pd.DataFrame, clip: float) -> dict[str, float]:
    labels = rows["label"].to_numpy()
    scores = probability_scores(rows.loc[:, PROBABILITIES].to_numpy(np.float64), labels, clip)
    uncalibrated = softmax(rows.loc[:, LOGITS].to_numpy(np.float64), axis=1)
    scores["log_loss_uncalibrated"] = probability_scores(uncalibrated, labels, clip)["log_loss"]
    if "p_label_unsmoothed" in rows:  # before test-neighbour smoothing (statefarm.evaluation.neighbours)
        scores["log_loss_unsmoothed"] = float(-np.log(np.clip(rows["p_label_unsmoothed"], 1e-15, None)).mean())
    return {"images": len(rows), **scores}


def cv_report(oof: pd.DataFrame, clip: float, labelled_images: int) -> pd.DataFrame:
    """One row per driver, per fold and overall, and the spread of the per-driver scores.

    Args:
        oof: Calibrated out-of-fold predictions (``calibrate_out_of_fold``).
        clip: The submission's clipping, for the log loss as Kaggle would score it.
        labelled_images: Usable labelled images; the overall row says what share the OOF covers.
    """
    drivers = [
        {"scope": "driver", "subject": subject, "fold": int(rows["fold"].iloc[0]), **_scores(rows, clip)}
        for subject, rows in oof.groupby("subject", sort=True)
    ]
    folds = [
        {"scope": "fold", "subject": "", "fold": int(fold), **_scores(rows, clip)}
        for fold, rows in oof.groupby("fold", sort=True)
    ]
    overall = {"scope": "overall", "subject": "", "fold": -1, **_scores(oof, clip)}
    overall["coverage"] = len(oof) / max(labelled_images, 1)
    by_driver = pd.DataFrame(drivers)
    score_columns = [
        name
        for name in ("log_loss", "log_loss_clipped", "accuracy", "log_loss_uncalibrated", "log_loss_unsmoothed")
        if name in by_driver
    ]
    spread = [
        {"scope": "driver_spread", "subject": statistic, "fold": -1, "images": len(by_driver),
         **by_driver[score_columns].agg(statistic).to_dict()}
        for statistic in ("mean", "std", "min", "max")
    ]  # fmt: skip
    report = pd.DataFrame([overall, *folds, *drivers, *spread])
    logger.info(
        "Out-of-fold over %d drivers: log loss %.4f (clipped %.4f), accuracy %.3f; per driver %.3f to %.3f",
        len(by_driver), overall["log_loss"], overall["log_loss_clipped"], overall["accuracy"],
        by_driver["log_loss"].min(), by_driver["log_loss"].max(),
    )  # fmt: skip
    return report


def cv_metrics(report: pd.DataFrame) -> dict[str, float]:
    """The overall, per-fold and spread figures of a ``cv_report``, flat, for MLflow."""
    overall = report[report["scope"] == "overall"].iloc[0]
    metrics = {name: float(overall[name]) for name in ("log_loss", "log_loss_clipped", "accuracy", "coverage")}
    for name in ("log_loss_uncalibrated", "log_loss_unsmoothed"):
        if name in overall:
            metrics[name] = float(overall[name])
    for row in report[report["scope"] == "driver_spread"].itertuples():
        metrics[f"driver_log_loss_{row.subject}"] = float(row.log_loss)
    for row in report[report["scope"] == "fold"].itertuples():
        metrics[f"fold_{row.fold}.log_loss"] = float(row.log_loss)
        metrics[f"fold_{row.fold}.accuracy"] = float(row.accuracy)
    return metrics


def mean_probabilities(probabilities: Sequence[np.ndarray], method: Literal["arithmetic", "geometric"]) -> np.ndarray:
    """The mean of several models' probabilities: arithmetic, or geometric (renormalized)."""
    stacked = np.stack([np.asarray(p, dtype=np.float64) for p in probabilities])
    if method == "arithmetic":
        return stacked.mean(axis=0)
    return softmax(np.log(np.clip(stacked, 1e-300, None)).mean(axis=0), axis=1)


def ensemble_test_predictions(
    fold_logits: Mapping[int, pd.DataFrame],
    calibration: dict,
    method: Literal["arithmetic", "geometric"],
    smoothing: dict | None = None,
    fold_neighbours: Mapping[int, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """The fold models' calibrated (and neighbour-smoothed) test probabilities, averaged: ``img``, ``c0``..``c9``.

    With ``smoothing`` (``neighbours.choose_smoothing``'s choice), each fold's probabilities
    are smoothed over that fold's ``fold_neighbours`` before the mean, as chosen out of fold.
    """
    folds = sorted(fold_logits)
    names = fold_logits[folds[0]]["img"]
    probabilities = []
    for fold in folds:
        logits = fold_logits[fold]
        if not logits["img"].equals(names):
            raise ValueError(f"fold {fold} predicted other test images than fold {folds[0]}")
        temperature = calibration["temperatures"][str(fold)]
        fold_probabilities = softmax(logits.loc[:, LOGITS].to_numpy(np.float64) / temperature, axis=1)
        if smoothing is not None:
            table = fold_neighbours[fold]
            if not table["img"].equals(names):
                raise ValueError(f"fold {fold}: its test neighbours are of other images than its predictions")
            fold_probabilities = smooth(
                fold_probabilities, table, smoothing["neighbours"], smoothing["weight"], smoothing["weighting"]
            )
        probabilities.append(fold_probabilities)
    mean = mean_probabilities(probabilities, method)
    logger.info("Test predictions: %s mean of %d fold model(s)", method, len(folds))
    return pd.DataFrame(mean, columns=PROBABILITIES).assign(img=names.to_numpy()).loc[:, ["img", *PROBABILITIES]]


def log_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """Logits that give back ``probabilities`` through a softmax (their logs, floored)."""
    return log_softmax(np.log(np.clip(probabilities, 1e-300, None)), axis=1)
