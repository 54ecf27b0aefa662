"""Nodes of ``cross_validation``: the folds' validation predictions as one out-of-fold score, and their ensemble."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from statefarm.data.submission import SubmissionConfig
from statefarm.evaluation import cross_validation as cv
from statefarm.evaluation import neighbours, reports
from statefarm.evaluation.inference import InferenceConfig
from statefarm.evaluation.metrics import as_metric_history
from statefarm.pipelines import names

logger = logging.getLogger(__name__)


def _by_fold(folds: list[int], items: tuple) -> dict[int, Any]:
    return dict(zip(folds, items, strict=True))


def collect_out_of_fold(
    image_index: pd.DataFrame, driver_folds: dict, config: InferenceConfig, *fold_data, folds: list[int]
) -> tuple[pd.DataFrame, dict]:
    """Every fold's validation logits, each image once from a model that never saw its driver, and calibrated.

    ``fold_data`` is each fold's ``valid_predictions``, then each fold's ``driver_split``.
    """
    predictions, splits = _by_fold(folds, fold_data[: len(folds)]), _by_fold(folds, fold_data[len(folds) :])
    complete = set(folds) == set(driver_folds["driver_folds"].values())  # every driver validated by a fold
    oof = cv.collect_out_of_fold(predictions, splits, image_index, complete)
    calibration = cv.fit_calibration(oof, config.calibrate)
    return cv.calibrate_out_of_fold(oof, calibration), calibration


def report_cross_validation(
    oof_predictions: pd.DataFrame, image_index: pd.DataFrame, submission: SubmissionConfig, kind: str = ""
) -> tuple[pd.DataFrame, dict, Figure, pd.DataFrame]:
    """Per driver, per fold and overall scores with their spread; the OOF confusion matrix and per-class report."""
    labelled = int(((image_index["split"] == "train") & image_index["valid"]).sum())
    report = cv.cv_report(oof_predictions, submission.clip, labelled)
    logits = oof_predictions.drop(columns=list(cv.PROBABILITIES))
    overall = report[report["scope"] == "overall"].iloc[0]
    drivers = oof_predictions["subject"].nunique()
    title = f"{kind} out of fold, {drivers} drivers: log loss {overall['log_loss_clipped']:.4f} as submitted"
    return (
        report,
        as_metric_history(cv.cv_metrics(report)),
        reports.confusion_matrix_figure(logits, title),
        reports.per_class_report(logits),
    )


def smooth_out_of_fold(
    calibrated_oof: pd.DataFrame, config: InferenceConfig, *fold_neighbours, folds: list[int]
) -> tuple[pd.DataFrame, dict, pd.DataFrame, dict]:
    """Test-neighbour smoothing chosen on the out-of-fold images and applied to them (``inference.neighbours``).

    ``fold_neighbours`` is each fold's ``valid_neighbours``. Returns the smoothed OOF
    table, the choice, the grid's scores and the before/after log loss for MLflow.
    """
    smoothed, choice, grid = neighbours.smooth_out_of_fold(
        calibrated_oof, _by_fold(folds, fold_neighbours), config.neighbours, cv.PROBABILITIES
    )
    logger.info(
        "Neighbour smoothing (%d %s neighbours, weight %.2f): out-of-fold log loss %.4f -> %.4f",
        choice["neighbours"], choice["weighting"], choice["weight"],
        choice["log_loss_before"], choice["log_loss_after"],
    )  # fmt: skip
    metrics = {name: value for name, value in choice.items() if name != "weighting"}
    return smoothed, choice, grid, as_metric_history(metrics)


def choose_smoothing_without_each_fold(
    calibrated_oof: pd.DataFrame, config: InferenceConfig, *fold_neighbours, folds: list[int]
) -> dict[str, dict]:
    """For each ``fold_<k>``, the neighbour smoothing chosen on the other folds' images: for its pseudo-labels.

    See ``neighbours.choose_smoothing_without_each_fold``.
    """
    choices = neighbours.choose_smoothing_without_each_fold(
        calibrated_oof, _by_fold(folds, fold_neighbours), config.neighbours, cv.PROBABILITIES
    )
    return {names.fold(fold): choice for fold, choice in choices.items()}


def ensemble_test_predictions(
    calibration: dict, smoothing: dict, config: InferenceConfig, *fold_data, folds: list[int]
) -> pd.DataFrame:
    """The mean of the fold models' calibrated, neighbour-smoothed test probabilities (``inference.ensemble``).

    ``fold_data`` is each fold's ``test_logits``, then each fold's ``test_neighbours``.
    """
    logits, tables = _by_fold(folds, fold_data[: len(folds)]), _by_fold(folds, fold_data[len(folds) :])
    return cv.ensemble_test_predictions(logits, calibration, config.ensemble, smoothing, tables)


def track_calibration(calibration: dict) -> dict:
    """Each fold's temperature and each calibration mode's held-out log loss, as MLflow metrics."""
    metrics = {f"temperature.{names.fold(k)}": t for k, t in calibration["temperatures"].items()}
    metrics |= {f"held_out_log_loss.{mode}": loss for mode, loss in calibration["held_out_log_loss"].items()}
    return as_metric_history(metrics)
