"""Project hooks: check every parameter, and build the fold pipelines for the run's ``split``."""

from __future__ import annotations

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
