"""Metrics logged while a long node runs (per epoch), with an explicit step.

Parameters and artifacts are logged by kedro-mlflow from the catalog; only the
training loop, which cannot wait for its node to return, logs from here. Outside
an MLflow run (a notebook, a unit test) these calls do nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import mlflow


def log_metrics(metrics: dict[str, float], step: int, prefix: str = "") -> None:
    """Log ``metrics`` at ``step`` to the active MLflow run, names prefixed by ``prefix``."""
    if mlflow.active_run() is None:
        return
    mlflow.log_metrics({f"{prefix}{name}": float(value) for name, value in metrics.items()}, step=step)


@contextlib.contextmanager
def nested_run(name: str, params: dict[str, Any]) -> Iterator[Callable[[dict[str, float]], None]]:
    """A child run of the active run, for one trial of a scan; yields a ``log(metrics)`` function.

    An exception inside marks the child run FAILED, records the error as a tag and
    propagates. Without an active run, nothing is recorded.
    """
    if mlflow.active_run() is None:
        yield lambda metrics: None
        return
    with mlflow.start_run(run_name=name, nested=True):
        mlflow.log_params(params)
        try:
            yield lambda metrics: mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        except Exception as error:
            mlflow.set_tag("error", f"{type(error).__name__}: {error}"[:5000])
            raise  # leaving start_run's context with an error marks the child run FAILED
