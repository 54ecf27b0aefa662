"""Project hooks: build the fold pipelines for the run's ``split`` parameters."""

from __future__ import annotations

from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl


class FoldPlanHooks:
    """One training per fold of ``split``: read before Kedro builds the run's pipelines."""

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        from statefarm.pipeline_registry import plan_folds  # the registry imports torch: not at settings time

        # The raw parameters (with --params applied): context.params would build the pipelines first.
        plan_folds(context.config_loader["parameters"].get("split"))
