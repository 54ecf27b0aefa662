"""Scores: multi-class log loss (raw and as Kaggle scores a clipped submission), accuracy."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def clip_probabilities(probabilities: np.ndarray, clip: float) -> np.ndarray:
    """Rows that sum to 1 with every entry in ``[clip, 1 - clip]``, as a submission is written.

    Each row becomes ``min(max(s * p, clip), 1 - clip)`` with the one scale ``s`` that makes
    it sum to 1, found by bisection (the sum grows with ``s``). Clipping and then
    renormalizing, the usual recipe, pushes entries back out of the range.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    classes = probabilities.shape[1]
    if clip == 0:
        return probabilities / probabilities.sum(axis=1, keepdims=True)
    if not 0 < clip <= 1 / classes:
        raise ValueError(f"clip must be in [0, 1/{classes}] for {classes} classes, got {clip}")

    def row_sums(scale: np.ndarray) -> np.ndarray:
        return np.clip(scale * probabilities, clip, 1 - clip).sum(axis=1, keepdims=True)

    # At scale 0 every row sums to classes * clip <= 1; at this scale its largest entry reaches 1 - clip.
    low = np.zeros((len(probabilities), 1))
    high = (1 - clip) / np.maximum(probabilities.max(axis=1, keepdims=True), 1e-300)
    for _ in range(64):  # halves the bracket down to float64 resolution
        middle = (low + high) / 2
        below = row_sums(middle) < 1
        low, high = np.where(below, middle, low), np.where(below, high, middle)
    return np.clip(high * probabilities, clip, 1 - clip)


def log_loss(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log probability of the true class (Kaggle's multi-class log loss)."""
    picked = probabilities[np.arange(len(labels)), labels]
    return float(-np.log(np.clip(picked, 1e-15, 1)).mean())


def classification_scores(logits: torch.Tensor, labels: torch.Tensor, clip: float) -> dict[str, float]:
    """Log loss from logits, log loss after submission clipping, and accuracy."""
    logits, labels = logits.float(), labels.long()
    probabilities = F.softmax(logits, dim=1).numpy()
    return {
        "log_loss": float(F.cross_entropy(logits, labels)),
        "log_loss_clipped": log_loss(clip_probabilities(probabilities, clip), labels.numpy()),
        "accuracy": float((logits.argmax(1) == labels).float().mean()),
    }


def probability_scores(probabilities: np.ndarray, labels: np.ndarray, clip: float) -> dict[str, float]:
    """Log loss of probabilities, log loss after submission clipping, and accuracy."""
    labels = np.asarray(labels, dtype=np.int64)
    return {
        "log_loss": log_loss(probabilities, labels),
        "log_loss_clipped": log_loss(clip_probabilities(probabilities, clip), labels),
        "accuracy": float((probabilities.argmax(axis=1) == labels).mean()),
    }


def as_metric_history(values: dict[str, float], step: int = 0) -> dict[str, dict[str, float]]:
    """``{name: value}`` in the shape kedro-mlflow's ``MlflowMetricsHistoryDataset`` saves."""
    return {name: {"value": float(value), "step": step} for name, value in values.items()}
