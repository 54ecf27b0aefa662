"""Project hooks: check every parameter and build the fold pipelines; mark interrupted runs in MLflow."""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import signal
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from filelock import FileLock, Timeout
from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl
from kedro.io import CatalogProtocol
from kedro.pipeline import Node, Pipeline
from kedro_mlflow.framework.hooks.mlflow_hook import MlflowHook
from pydantic import BaseModel

from statefarm.pipelines import names
from statefarm.runtime import run_summary, tracking
from statefarm.runtime.atomic import write_atomic


class ParameterHooks:
    """Runs once the run's configuration is loaded, before Kedro builds its pipelines or runs a node.

    It checks every parameter, then plans the pipelines for the run's folds and blend members.
    """

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        # Imported here: they import torch, which `kedro --help` should not wait for.
        from statefarm.parameters import validate_parameters
        from statefarm.pipeline_registry import use_plan
        from statefarm.pipelines.chain import plan_pipelines

        # The raw parameters, with --params applied: context.params would build the pipelines first.
        parameters = validate_parameters(context.config_loader["parameters"])
        use_plan(plan_pipelines(parameters.split, parameters.blend, parameters.training))


class RunLockedError(RuntimeError):
    """Another run is writing to the same data folder."""


class RunLockHooks:
    """One run at a time per dataset's data folders.

    Two runs of one environment would share checkpoints and ``model.pt`` files, and one's
    summary would name the other's submission. A run holds ``data/.<dataset>.lock`` from its
    start to its end (the system frees it if the process dies), and writes who holds it
    beside it, so that a second run stops at once and names the first.
    """

    def __init__(self) -> None:
        self._lock: FileLock | None = None
        self._path: Path | None = None

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        dataset = context.config_loader["globals"].get("dataset", "default")
        self._path = Path(context.project_path) / "data" / f".{dataset}.lock"

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self) -> None:
        self._release()  # held still if an earlier run in this process failed before it started
        if self._path is None:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self._path, timeout=0)
        holder = self._path.with_suffix(".holder.json")
        try:
            lock.acquire()
        except Timeout:
            try:
                who = json.loads(holder.read_text())
                named = f"process {who['pid']} (`{who['command']}`, started {who['started']})"
            except (OSError, ValueError, KeyError):
                named = "another process"
            raise RunLockedError(
                f"{named} is running on this dataset's data folders ({self._path}); wait for it to end or "
                "stop it: two runs at once would share checkpoints and models"
            ) from None
        self._lock = lock
        who = {"pid": os.getpid(), "command": " ".join(sys.argv), "started": f"{datetime.now():%Y-%m-%d %H:%M:%S}"}
        write_atomic(holder, lambda path: path.write_text(json.dumps(who)))

    @hook_impl
    def after_pipeline_run(self) -> None:
        self._release()

    @hook_impl
    def on_pipeline_error(self) -> None:
        self._release()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None


class StaleModelError(ValueError):
    """A resumed run would keep models trained with another recipe than its own."""


class ResumeHooks:
    """``--only-missing-outputs`` skips a node whose outputs exist: a model trained with other parameters
    would be kept without a word. Before the run starts (and before MLflow opens it), refuse,
    naming each such model and the keys that differ."""

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog: CatalogProtocol) -> None:
        if not run_params.get("only_missing_outputs"):
            return
        from statefarm.modeling.checkpoints import describe_differences
        from statefarm.pipelines.training.nodes import recipe_changes

        stale = []
        for node in pipeline.nodes:
            model = node.outputs[0] if node.name.endswith("train_model") else None
            if model is None or not catalog.exists(model):
                continue
            groups = [name for name in node.inputs if name.startswith("params:")]
            params = {name.removeprefix("params:"): catalog.load(name) for name in groups}
            member = next((value for key, value in params.items() if key.startswith("blend.members.")), None)
            tuned = catalog.load("tuned_regularization") if "tuned_regularization" in node.inputs else None
            changes = recipe_changes(catalog.load(model), params, member, tuned)
            if changes:
                stale.append(f"{model} ({describe_differences(changes, 'when trained')})")
        if stale:
            raise StaleModelError(
                f"--only-missing-outputs would keep {len(stale)} model(s) trained with other parameters than this "
                f"run's: {'; '.join(stale)}. Run without --only-missing-outputs to retrain everything, or delete "
                "those models' folders in data/06_models to retrain only them."
            )


def exit_on_sigterm(signum: int, frame) -> None:
    raise SystemExit(128 + signum)  # unwinds like Ctrl-C, so the exit handler below runs


class InterruptHooks:
    """A run stopped by Ctrl-C or SIGTERM ends ``KILLED`` in MLflow instead of staying ``RUNNING``.

    Kedro reports only exceptions to ``on_pipeline_error``; an interrupt passes it by,
    and kedro-mlflow never closes the run. A run killed with SIGKILL cannot be marked;
    see the README for ``mlflow gc``.
    """

    def __init__(self) -> None:
        self._running = False
        self._registered = False

    @hook_impl
    def before_pipeline_run(self) -> None:
        self._running = True
        if not self._registered:  # after MLflow's own exit handler, which would end the run FINISHED
            atexit.register(self._mark_killed)
            self._registered = True
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, exit_on_sigterm)

    @hook_impl
    def after_pipeline_run(self) -> None:
        self._running = False

    @hook_impl
    def on_pipeline_error(self) -> None:
        self._running = False

    def _mark_killed(self) -> None:
        if self._running:
            while mlflow.active_run() is not None:
                mlflow.end_run(status="KILLED")


SEPARATE_EXPERIMENTS = {"collab": "collab"}  # a pipeline run alone -> the suffix of its own experiment's name


class ProjectMlflowHook(MlflowHook):
    """kedro-mlflow's hook, handed each parameter group as plain values, less the augmentation grid;
    ``collab`` in an experiment of its own.

    Nodes read their groups validated (``SplitConfig``, ...); kedro-mlflow flattens dicts
    only, so each is logged as the values it holds, defaults included. kedro-mlflow logs
    every parameter a node reads: the scan's grid alone would be about 50
    (``augment_tuning.candidates.shift.values``, ...) and drown the ones that matter. The
    grid is the ``augment_grid`` artifact instead, and each trial's child run carries its
    own transform and value.

    ``kedro run --pipelines=collab`` (MovieLens, another task) logs to ``<experiment>-collab``
    (``statefarm-collab``), so that the State Farm experiment lists State Farm runs only.
    kedro-mlflow sets one experiment when the session starts, before the pipeline is known;
    here it is set again, through its public ``setup``, once the run names its pipeline.
    """

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        # Before kedro-mlflow's setup, whose first request to an absent server retries for minutes.
        uri = (context.config_loader["mlflow"].get("server") or {}).get("mlflow_tracking_uri") or ""
        tracking.check_tracking_server(str(uri))
        self._context = context
        super().after_context_created(context)

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog: CatalogProtocol) -> None:
        suffix = SEPARATE_EXPERIMENTS.get(_pipeline_label(run_params))
        if suffix is not None:
            experiment = self.mlflow_config.tracking.experiment
            experiment.name = f"{experiment.name}-{suffix}"
            self.mlflow_config.setup(self._context)
        super().before_pipeline_run(run_params, pipeline, catalog)

    @hook_impl
    def before_node_run(self, node: Node, catalog: CatalogProtocol, inputs: dict[str, Any], is_async: bool) -> None:
        super().before_node_run(node, catalog, parameters_to_log(inputs), is_async)


def parameters_to_log(inputs: dict[str, Any]) -> dict[str, Any]:
    """A node's inputs as kedro-mlflow should log them: each validated group as plain values, and
    ``augment_tuning`` without its ``candidates``."""
    kept = {
        name: value.model_dump(mode="json") if name.startswith("params:") and isinstance(value, BaseModel) else value
        for name, value in inputs.items()
        if not name.startswith("params:augment_tuning.candidates")
    }
    if isinstance(kept.get("params:augment_tuning"), dict):
        kept["params:augment_tuning"] = {k: v for k, v in kept["params:augment_tuning"].items() if k != "candidates"}
    return kept


def _pipeline_label(run_params: dict[str, Any]) -> str:
    """What kedro-mlflow names a run by default: the pipelines joined by ``+``."""
    names = run_params.get("pipeline_names") or run_params.get("pipeline_name") or "__default__"
    return names if isinstance(names, str) else "+".join(names)


def _shown(path: Path) -> Path:
    """``path`` relative to the working directory when it is under it, as a user would type it."""
    return path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path


class RunSummaryHooks:
    """Names the MLflow run, links each submission file to it, and ends the run with a summary table.

    - The run is named ``<pipelines> · <env> · <start time>`` (unless ``mlflow.yml`` names
      it), so repeated runs are told apart, and the experiment is marked as model
      training, so that MLflow 3 opens it on its runs rather than its GenAI pages.
    - Each submission gets run tags ``submission.<kind>.path`` and ``.sha256``, and a
      ``mlflow_run.json`` beside the file names the run.
    - The summary: each model's log loss and accuracy (out of fold, as submitted, when
      the run has the report), best epochs, submission paths, the one to upload, and
      how to open the run in MLflow.
    """

    def __init__(self) -> None:
        self._catalog: CatalogProtocol | None = None
        self._run: run_summary.TrackedRun | None = None
        self._current: dict[int, tuple[str, float]] = {}  # per runner thread: the node running, and since when
        self._seconds: dict[str, float] = {}

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], catalog: CatalogProtocol) -> None:
        # kedro-mlflow's hook, registered after this one, runs first: its run is active here.
        self._catalog, self._run, self._current, self._seconds = catalog, None, {}, {}
        active = mlflow.active_run()
        if active is None:
            return
        info = active.info
        mlflow.set_tag("kedro_command", run_summary.kedro_command(run_params))  # kedro-mlflow's lacks --env, --params
        label, name = _pipeline_label(run_params), info.run_name
        if name == label:  # kedro-mlflow's default name
            name = f"{label} · {run_params.get('env') or 'local'} · {datetime.now():%Y-%m-%d %H:%M}"
            mlflow.set_tag("mlflow.runName", name)
        client = mlflow.MlflowClient()
        experiment = client.get_experiment(info.experiment_id)
        if "mlflow.experimentKind" not in experiment.tags:
            client.set_experiment_tag(experiment.experiment_id, "mlflow.experimentKind", "custom_model_development")
        self._run = run_summary.TrackedRun(info.run_id, name, info.experiment_id, mlflow.get_tracking_uri())

    @hook_impl
    def before_node_run(self, node: Node) -> None:
        # A node's time runs to the next node's start in the same thread: its outputs are saved after
        # after_node_run. Under the ThreadRunner each thread runs one node at a time.
        thread = threading.get_ident()
        self._close_node(thread)
        self._current[thread] = (node.name, time.perf_counter())

    def _close_node(self, thread: int) -> None:
        if thread in self._current:
            name, started = self._current.pop(thread)
            self._seconds[name] = self._seconds.get(name, 0.0) + time.perf_counter() - started

    @hook_impl
    def after_dataset_saved(self, dataset_name: str) -> None:
        if not dataset_name.endswith(".submission") or self._run is None or self._catalog is None:
            return
        path = self._catalog.get(dataset_name).latest_path()
        kind = dataset_name.removesuffix(".submission")
        link = {
            **vars(self._run),
            "open": run_summary.mlflow_ui_hint(self._run),
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        }
        client = mlflow.MlflowClient()
        client.set_tag(self._run.run_id, f"submission.{kind}.path", str(path))
        client.set_tag(self._run.run_id, f"submission.{kind}.sha256", link["sha256"])
        write_atomic(path.parent / "mlflow_run.json", lambda partial: partial.write_text(json.dumps(link, indent=2)))

    @hook_impl
    def after_pipeline_run(self, pipeline: Pipeline, catalog: CatalogProtocol) -> None:
        for thread in list(self._current):
            self._close_node(thread)
        outputs = {name for name in pipeline.all_outputs() if catalog.exists(name)}
        submissions = {
            name.removesuffix(".submission"): _shown(catalog.get(name).latest_path())
            for name in sorted(outputs)
            if name.endswith(".submission")
        }
        scores = _scores(outputs, catalog)
        summary = run_summary.format_summary(scores, submissions, self._run, self._seconds)
        if self._run is not None:  # the verdict on the run itself: its description, and tags to filter runs by
            client = mlflow.MlflowClient()
            for key, value in run_summary.verdict_tags(scores, submissions).items():
                client.set_tag(self._run.run_id, key, value)
            client.set_tag(self._run.run_id, "mlflow.note.content", f"```\n{summary}\n```")
        run_summary.logger.info(summary)


def _scores(outputs: set[str], catalog: CatalogProtocol) -> list[run_summary.ModelScore]:
    """Each model kind reported out of fold in ``outputs``; else each model trained, on its validation drivers.

    Kinds are ``baseline``, ``pseudo``, a blend member's ``baseline.<member>``, the blend's ``baseline.blend``, ...
    """
    histories: dict[str, pd.DataFrame] = {
        name.removesuffix(".training_history"): catalog.load(name)
        for name in sorted(outputs)
        if name.endswith(".training_history")
    }
    reported = sorted(name.removesuffix(".cv_report") for name in outputs if name.endswith(".cv_report"))
    scores = [
        run_summary.out_of_fold_score(
            kind,
            catalog.load(f"{kind}.cv_report"),
            [history for model, history in histories.items() if names.kind_of(model) == kind],
        )
        for kind in reported
    ]
    return scores + [
        run_summary.validation_score(model, history)
        for model, history in histories.items()
        if names.kind_of(model) not in reported
    ]
