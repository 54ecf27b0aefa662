"""What a long node logs to MLflow as it goes: per-epoch metrics, and child runs.

Parameters and artifacts of a ``kedro run`` are logged by kedro-mlflow from the catalog;
only work that cannot wait for its node to return logs from here, and a model's files go
to its own child run (``ModelRunArtifactDataset``). Each trained model
and each augmentation trial is a child run of the ``kedro run``'s run, so that MLflow's
compare view can overlay their curves. Outside an MLflow run (a notebook, a unit test)
these calls do nothing.
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Metric


class TrackingServerError(RuntimeError):
    """The MLflow tracking server the configuration names does not answer."""


def check_tracking_server(uri: str, timeout: float = 5.0) -> None:
    """Raise at once when ``uri`` is a tracking server that does not answer.

    MLflow's own client retries for minutes before it gives up. Any HTTP answer counts as
    an answer (a proxy that wants credentials, a server without ``/health``); a store that
    is not a server (``sqlite:///mlflow.db``) is not checked.
    """
    if not uri.startswith(("http://", "https://")):
        return
    try:
        urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout).close()
    except urllib.error.HTTPError:
        return
    except (OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise TrackingServerError(
            f"the MLflow tracking server {uri} does not answer ({reason}); start it, or point "
            "server.mlflow_tracking_uri in conf/local/mlflow.yml (or MLFLOW_TRACKING_URI) at one that does"
        ) from None


@dataclass(frozen=True)
class RunLogger:
    """``log(metrics, step=None)``: logs to one MLflow run by its id, from any process.

    A data-parallel worker is another process, outside the run kedro-mlflow opened; it
    logs through this (plain values, so it pickles). Without a run it does nothing.
    """

    tracking_uri: str | None = None
    run_id: str | None = None

    def __call__(self, metrics: dict[str, float], step: int | None = None) -> None:
        if self.run_id is None:
            return
        client = mlflow.MlflowClient(self.tracking_uri)
        stamp = int(time.time() * 1000)
        client.log_batch(self.run_id, [Metric(name, float(value), stamp, step or 0) for name, value in metrics.items()])


def log_metrics(metrics: dict[str, float], step: int, prefix: str = "") -> None:
    """Log ``metrics`` at ``step`` to the active MLflow run, names prefixed by ``prefix``."""
    if mlflow.active_run() is None:
        return
    mlflow.log_metrics({f"{prefix}{name}": float(value) for name, value in metrics.items()}, step=step)


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested parameters as MLflow's flat ``a.b.c`` keys; lists are written as JSON."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat |= flatten_params(value, f"{name}.")
        else:
            flat[name] = json.dumps(value) if isinstance(value, list | tuple | Mapping) else str(value)
    return flat


def model_run_id(model: str) -> str | None:
    """The id of the child run of ``model`` (tagged ``model: <name>``) under the active run, the latest if several."""
    parent = mlflow.active_run()
    if parent is None:
        return None
    children = mlflow.search_runs(
        [parent.info.experiment_id],
        f"tags.mlflow.parentRunId = '{parent.info.run_id}' and tags.model = '{model}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    return children[0].info.run_id if children else None


def log_model_artifact(model: str, path: Path) -> None:
    """Log the file at ``path`` to the child run of ``model``; without one, to the active run under ``<model>/``.

    Outside an MLflow run, nothing is logged.
    """
    if mlflow.active_run() is None:
        return
    run_id = model_run_id(model)
    if run_id is None:
        mlflow.log_artifact(str(path), model)
    else:
        mlflow.MlflowClient().log_artifact(run_id, str(path))


@contextlib.contextmanager
def child_run(name: str, params: Mapping[str, Any], tags: Mapping[str, str] | None = None) -> Iterator[RunLogger]:
    """A child run of the active run, with its own parameters; yields its ``RunLogger``.

    An exception inside marks the child run FAILED, and an interrupt (Ctrl-C, or SIGTERM
    once the run's hooks turn it into ``SystemExit``) KILLED, as its parent is marked;
    either records the error as a tag and propagates. Without an active run, nothing is recorded.
    """
    parent = mlflow.active_run()
    if parent is None:
        yield RunLogger()
        return
    tags = {"parent_run_name": parent.info.run_name or "", **(tags or {})}
    run = mlflow.start_run(run_name=name, nested=True, tags=tags)
    try:
        mlflow.log_params(flatten_params(params))
        yield RunLogger(mlflow.get_tracking_uri(), run.info.run_id)
    except BaseException as error:
        mlflow.set_tag("error", f"{type(error).__name__}: {error}"[:5000])
        mlflow.end_run("KILLED" if isinstance(error, KeyboardInterrupt | SystemExit) else "FAILED")
        raise
    mlflow.end_run()
