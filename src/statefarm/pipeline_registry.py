"""Project pipelines: the stages, and the whole chain assembled from them for the run's folds.

How many folds a run trains is a parameter (``split``), yet Kedro pipelines are built
before nodes run: ``ParameterHooks`` reads the run's ``split`` parameters once its
configuration is loaded and calls ``plan_folds``, and the pipelines are built for those
folds. Without a run (``kedro registry list``) they are built for ``SplitConfig``'s defaults.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kedro.framework.project import pipelines as project_pipelines
from kedro.pipeline import Pipeline

from statefarm.config import parse_params
from statefarm.pipelines import (
    augment_tuning,
    collab,
    cross_validation,
    data_prep,
    demo_data,
    inference,
    pseudo_label,
    sampling,
    submission,
    training,
)
from statefarm.splits import SplitConfig

_planned_folds: list[int] | None = None


def plan_folds(split: Mapping[str, Any] | None) -> list[int]:
    """Build the pipelines for the folds these ``split`` parameters train; return those folds."""
    global _planned_folds
    folds = parse_params(SplitConfig, split, "split").folds
    if folds != _planned_folds:
        _planned_folds = folds
        project_pipelines.configure(__name__)  # rebuilt on next access
    return folds


def _total(pipelines: Iterable[Pipeline]) -> Pipeline:
    return sum(pipelines, Pipeline([]))


def model_pipelines(kind: str, folds: list[int], labels_from: str | None = None) -> dict[str, Pipeline]:
    """Training, inference (with the out-of-fold report and fold ensemble) and submission of ``kind``.

    One training and one inference pipeline per fold, under ``<kind>.fold_<k>``; with
    ``labels_from``, fold ``k`` learns from ``<kind>.fold_<k>.pseudo_labels``, made by
    ``<labels_from>.fold_<k>`` (see ``pseudo_label.create_pipeline``), and may start from its weights.
    """
    trainings = []
    for k in folds:
        init_model = f"{labels_from}.fold_{k}.model" if labels_from else None
        trainings.append(training.create_pipeline(f"{kind}.fold_{k}", f"fold_{k}.driver_split", init_model))
    return {
        "training": _total(trainings),
        "inference": _total(inference.create_pipeline(f"{kind}.fold_{k}") for k in folds)
        + cross_validation.create_pipeline(kind, folds),
        "submission": submission.create_pipeline(kind),
    }


def register_pipelines() -> dict[str, Pipeline]:
    """Register each stage, ``pseudo_label`` (also ``__default__``), the whole chain, and ``collab``.

    Returns:
        A mapping from pipeline names to ``Pipeline`` objects.
    """
    folds = _planned_folds if _planned_folds is not None else SplitConfig().folds
    baseline = model_pipelines("baseline", folds)
    pseudo = model_pipelines("pseudo", folds, labels_from="baseline")
    stages = {
        "demo_data": demo_data.create_pipeline(),
        "data_prep": data_prep.create_pipeline(),
        "sampling": sampling.create_pipeline(folds),
        "augment_tuning": augment_tuning.create_pipeline(),
        **baseline,
    }
    whole_chain = (
        _total(stage for name, stage in stages.items() if name != "demo_data")
        + pseudo_label.create_pipeline(folds, kind="pseudo", labels_from="baseline")
        + _total(pseudo.values())
    )
    return stages | {"pseudo_label": whole_chain, "collab": collab.create_pipeline(), "__default__": whole_chain}
