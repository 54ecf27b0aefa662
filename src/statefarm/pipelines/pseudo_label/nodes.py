"""Nodes of ``pseudo_label``: the baseline's test predictions as targets, and the comparison after."""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch

from statefarm import pseudo_labels as pseudo
from statefarm.config import parse_params
from statefarm.layout import CLASS_NAMES
from statefarm.metrics import as_metric_history, classification_scores


def make_pseudo_labels(test_predictions: pd.DataFrame, pseudo_label: dict[str, Any]) -> pd.DataFrame:
    """Soft or hard targets for the test images the baseline is confident enough about."""
    config = parse_params(pseudo.PseudoLabelConfig, pseudo_label, "pseudo_label")
    return pseudo.make_pseudo_labels(test_predictions, config)


def track_pseudo_labels(pseudo_labels: pd.DataFrame, test_predictions: pd.DataFrame) -> dict:
    """The share of test images kept and the class distribution, as MLflow metrics."""
    return as_metric_history(pseudo.summarize_pseudo_labels(pseudo_labels, len(test_predictions)))


def compare_models(
    baseline_predictions: pd.DataFrame, pseudo_predictions: pd.DataFrame, submission: dict[str, Any]
) -> pd.DataFrame:
    """Baseline against pseudo-labelled, on the same held-out drivers: log loss (raw, clipped), accuracy."""
    if set(baseline_predictions["img"]) != set(pseudo_predictions["img"]):
        raise ValueError("baseline and pseudo models were validated on different images; the comparison would lie")
    rows = []
    for name, predictions in (("baseline", baseline_predictions), ("pseudo", pseudo_predictions)):
        logits = torch.tensor(predictions.loc[:, [f"logit_{c}" for c in CLASS_NAMES]].to_numpy())
        labels = torch.tensor(predictions["label"].to_numpy())
        rows.append({"model": name, **classification_scores(logits, labels, submission["clip"])})
    return pd.DataFrame(rows)


def track_comparison(comparison: pd.DataFrame) -> dict:
    """``comparison.<model>.<score>`` as MLflow metrics."""
    return as_metric_history(
        {
            f"{row['model']}.{score}": row[score]
            for row in comparison.to_dict("records")
            for score in row
            if score != "model"
        }
    )
