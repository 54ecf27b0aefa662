"""Project hooks: check every parameter and build the fold pipelines; mark interrupted runs in MLflow."""

from __future__ import annotations

import atexit
import signal
import threading

import mlflow
from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl


class ParameterHooks:
    """Runs once the run's configuration is loaded, before Kedro builds its pipelines or runs a node."""

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        # Imported here: they import torch, which `kedro --help` should not wait for.
        from statefarm.parameters import validate_parameters
        from statefarm.pipeline_registry import plan_folds

        # The raw parameters, with --params applied: context.params would build the pipelines first.
        parameters = context.config_loader["parameters"]
        validate_parameters(parameters)
        plan_folds(parameters["split"])


def _exit_on_sigterm(signum: int, frame) -> None:
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
            signal.signal(signal.SIGTERM, _exit_on_sigterm)

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
