"""Scores: multi-class log loss (raw and as Kaggle scores a clipped submission), accuracy."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def clip_probabilities(probabilities: np.ndarray, clip: float) -> np.ndarray:
    """Clip to ``[clip, 1 - clip]`` and renormalize rows, as a submission is written."""
    clipped = np.clip(probabilities, clip, 1 - clip)
    return clipped / clipped.sum(axis=1, keepdims=True)


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
