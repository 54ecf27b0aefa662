"""Metrics logged while a long node runs (per epoch), with an explicit step.

Parameters and artifacts are logged by kedro-mlflow from the catalog; only the
training loop, which cannot wait for its node to return, logs from here. Outside
an MLflow run (a notebook, a unit test) these calls do nothing.
"""

from __future__ import annotations

import mlflow


def log_metrics(metrics: dict[str, float], step: int, prefix: str = "") -> None:
    """Log ``metrics`` at ``step`` to the active MLflow run, names prefixed by ``prefix``."""
    if mlflow.active_run() is None:
        return
    mlflow.log_metrics({f"{prefix}{name}": float(value) for name, value in metrics.items()}, step=step)
