"""Nodes of ``blend``: the models' predictions pooled, and the weights that pool them as MLflow metrics."""

from __future__ import annotations

import pandas as pd

from statefarm.evaluation import blending
from statefarm.evaluation.metrics import as_metric_history


def blend_out_of_fold(*oof_predictions: pd.DataFrame, models: list[str]) -> tuple[pd.DataFrame, dict, dict]:
    """The models' OOF predictions blended, each fold with weights fitted on the others; the weights; their metrics.

    ``oof_predictions`` is each of ``models``' ``oof_predictions``, in that order.
    """
    oof, weights = blending.blend_out_of_fold(dict(zip(models, oof_predictions, strict=True)))
    metrics = {f"weight.{name}": value for name, value in weights["all_folds"].items()}
    metrics |= {f"log_loss.{name}": value for name, value in weights["log_loss"].items()}
    return oof, weights, as_metric_history(metrics)


def blend_test_predictions(blend_weights: dict, *test_predictions: pd.DataFrame, models: list[str]) -> pd.DataFrame:
    """The models' test predictions pooled with the weights fitted on every fold."""
    return blending.blend_test_predictions(dict(zip(models, test_predictions, strict=True)), blend_weights["all_folds"])
