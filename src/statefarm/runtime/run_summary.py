"""The table a ``kedro run`` ends with: which model scored what, where its submission is, which run holds it.

Plain functions over what the run wrote (cv reports, training histories, submission
paths); ``hooks.RunSummaryHooks`` gathers them from the catalog and logs the table to ``logger``.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from statefarm.pipelines import names
from statefarm.runtime import tracking

logger = logging.getLogger(__name__)  # conf/logging.yml prints it without the log-line prefix


@dataclass(frozen=True)
class ModelScore:
    """One model's score: out of fold (a kind: ``baseline``), or on one fold's validation drivers."""

    name: str
    scope: str  # "out of fold, 20 drivers" or "fold 0 validation drivers"
    log_loss: float  # as submitted: calibrated, neighbour-smoothed, clipped
    accuracy: float
    best_epochs: tuple[int, ...]  # 1-based, one per fold
    as_submitted: bool = False  # calibrated, neighbour-smoothed and clipped, as the submission is


@dataclass(frozen=True)
class TrackedRun:
    run_id: str
    run_name: str
    experiment_id: str
    tracking_uri: str


# run_params keys of a Kedro run and the `kedro run` option each came from, in the order a user writes them.
_RUN_OPTIONS = (
    ("env", "--env"), ("pipeline_names", "--pipelines"), ("node_names", "--nodes"), ("from_nodes", "--from-nodes"),
    ("to_nodes", "--to-nodes"), ("from_inputs", "--from-inputs"), ("to_outputs", "--to-outputs"),
    ("namespaces", "--namespaces"), ("tags", "--tags"),
)  # fmt: skip


def kedro_command(run_params: Mapping[str, Any]) -> str:
    """The ``kedro run`` command line that makes this run again: environment, pipelines, nodes,
    ``--params`` (flattened ``group.key=value``) and ``--only-missing-outputs``, as Kedro received them."""
    words = ["kedro", "run"]
    for key, option in _RUN_OPTIONS:
        value = run_params.get(key)
        if value:
            words.append(f"{option}={value if isinstance(value, str) else ','.join(map(str, value))}")
    if run_params.get("runtime_params"):
        flat = tracking.flatten_params(run_params["runtime_params"])
        words.append(f"--params={','.join(f'{key}={value}' for key, value in flat.items())}")
    if run_params.get("only_missing_outputs"):
        words.append("--only-missing-outputs")
    # Kedro records the runner as a class name or as an instance's repr.
    runner = re.search(r"\w+Runner\b", str(run_params.get("runner") or ""))
    if runner and runner.group() != "SequentialRunner":
        words.append(f"--runner={runner.group()}")
    return " ".join(words)


def best_epoch(history: pd.DataFrame) -> int:
    """The kept epoch (lowest validation log loss), counted from 1 as the training log counts."""
    return int(history.loc[history["valid_loss"].idxmin(), "epoch"]) + 1


def out_of_fold_score(name: str, cv_report: pd.DataFrame, histories: Sequence[pd.DataFrame]) -> ModelScore:
    """A kind's overall ``cv_report`` row, clipped as submitted, with each fold's kept epoch."""
    overall = cv_report[cv_report["scope"] == "overall"].iloc[0]
    drivers = int((cv_report["scope"] == "driver").sum())
    coverage = float(overall.get("coverage", 1.0))
    scope = f"out of fold, {drivers} drivers" + ("" if coverage >= 1 else f" ({coverage:.0%} of images)")
    return ModelScore(
        name, scope, float(overall["log_loss_clipped"]), float(overall["accuracy"]),
        tuple(best_epoch(history) for history in histories), as_submitted=True,
    )  # fmt: skip


def validation_score(name: str, history: pd.DataFrame) -> ModelScore:
    """One trained model's best epoch on its validation drivers (no out-of-fold report in this run)."""
    best = history.loc[history["valid_loss"].idxmin()]
    return ModelScore(
        name, "its validation drivers", float(best["valid_loss_clipped"]), float(best["valid_accuracy"]),
        (best_epoch(history),),
    )  # fmt: skip


def mlflow_ui_hint(run: TrackedRun) -> str:
    """How to open the run: its URL on a tracking server, or the local UI command and URL."""
    # MLflow 3's UI starts on its GenAI pages; the parameter switches it to model training.
    page = f"#/experiments/{run.experiment_id}/runs/{run.run_id}?workflowType=machine_learning"
    if run.tracking_uri.startswith(("http://", "https://")):
        return f"{run.tracking_uri.rstrip('/')}/{page}"
    return f"`{ui_command()}`, then http://127.0.0.1:5000/{page}"


def ui_command() -> str:
    """The command that opens the MLflow UI with this Python, activated or not (``statefarm.runtime.mlflow_ui``)."""
    python = Path(sys.executable)
    shown = os.path.relpath(python) if python.is_relative_to(Path.cwd()) else str(python)
    return f"{shown} -m statefarm.runtime.mlflow_ui"


def format_duration(seconds: float) -> str:
    """``1h02m``, ``4m05s`` or ``12s``."""
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def where_the_time_went(node_seconds: Mapping[str, float], most: int = 5) -> str:
    """The run's wall time and the stages that took most of it, each fold's copies of a node summed.

    ``node_seconds``: each node's wall time, its outputs' saving included.
    """
    stages: dict[str, float] = {}
    for name, seconds in node_seconds.items():
        stage = names.any_fold(name)
        stages[stage] = stages.get(stage, 0.0) + seconds
    total = sum(stages.values())
    slowest = sorted(stages.items(), key=lambda item: -item[1])[:most]
    parts = ", ".join(f"{stage} {format_duration(seconds)} ({seconds / total:.0%})" for stage, seconds in slowest)
    return f"  Time: {format_duration(total)} in nodes; {parts}"


def verdict_tags(scores: Sequence[ModelScore], submissions: Mapping[str, Path]) -> dict[str, str]:
    """MLflow tags of the run's verdict: the model with the lowest log loss, its score, its lead over the
    next one, and the submission to upload when it wrote one."""
    if not scores:
        return {}
    ranked = sorted(scores, key=lambda score: score.log_loss)
    tags = {"verdict.model": ranked[0].name, "verdict.log_loss": f"{ranked[0].log_loss:.4f}"}
    if len(ranked) > 1:
        tags["verdict.margin"] = f"{ranked[1].log_loss - ranked[0].log_loss:.4f} below {ranked[1].name}"
    if ranked[0].name in submissions:
        tags["verdict.upload"] = str(submissions[ranked[0].name])
    return tags


def format_summary(
    scores: Sequence[ModelScore],
    submissions: Mapping[str, Path],
    run: TrackedRun | None,
    node_seconds: Mapping[str, float] | None = None,
) -> str:
    """The closing table: one row per model, the lowest log loss marked, the submissions and the one to upload.

    Args:
        scores: One per model kind (out of fold) or trained model (its validation drivers).
        submissions: The file each kind's submission was written to in this run.
        run: The MLflow run, when there is one.
        node_seconds: How long each node ran, for where the time went.
    """
    lines = ["Run summary"]
    best = min(scores, key=lambda score: score.log_loss) if scores else None
    if scores:
        width = max(len(score.name) for score in scores)
        lines.append(f"  {'model':<{width}}  log loss  accuracy  best epoch  scored on")
        for score in scores:
            epochs = ",".join(str(epoch) for epoch in score.best_epochs) or "-"
            mark = "  <- lowest" if score is best and len(scores) > 1 else ""
            figures = f"{score.log_loss:8.4f}  {score.accuracy:8.3f}  {epochs:>10}"
            lines.append(f"  {score.name:<{width}}  {figures}  {score.scope}{mark}")
        if any(score.as_submitted for score in scores):
            lines.append("  (out of fold: log loss as submitted, calibrated, neighbour-smoothed and clipped)")
    for kind, path in submissions.items():
        lines.append(f"  {kind} submission: {path}")
    if best is not None and best.name in submissions:
        lines.append(f"  Upload: {submissions[best.name]}")
    if node_seconds:
        lines.append(where_the_time_went(node_seconds))
    if run is not None:
        lines.append(f"  MLflow run '{run.run_name}' ({run.run_id})")
        lines.append(f"  Open it: {mlflow_ui_hint(run)}")
    return "\n".join(lines)
