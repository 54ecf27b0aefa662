"""Project pipelines, registered for the run's plan (``statefarm.pipelines.chain``).

``ParameterHooks`` plans the pipelines from the run's parameters once its configuration is
loaded and hands the plan to ``use_plan``; without a run (``kedro registry list``) they are
built for ``chain.DEFAULT_PLAN``: ``SplitConfig``'s default folds, no blend, and the scan.
"""

from __future__ import annotations

from kedro.framework.project import pipelines as project_pipelines
from kedro.pipeline import Pipeline

from statefarm.pipelines.chain import DEFAULT_PLAN, PipelinePlan, build_pipelines

_plan: PipelinePlan = DEFAULT_PLAN


def use_plan(plan: PipelinePlan) -> None:
    """Register the pipelines of ``plan`` from now on."""
    global _plan
    if plan != _plan:
        _plan = plan
        project_pipelines.configure(__name__)  # rebuilt on next access


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines for the current plan."""
    return build_pipelines(_plan)
