"""The whole chain's shape: a pure function from the run's plan to its pipelines.

How many folds a run trains (``split``), which architectures it blends (``blend``) and
whether any of them augments with the scan's result (``training.use_tuned_augmentations``)
are parameters, yet Kedro pipelines are built before nodes run: ``plan_pipelines`` turns
the run's parameters into a ``PipelinePlan`` and ``build_pipelines`` builds every pipeline
for it. ``pipeline_registry`` registers them for the plan of the run at hand.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from kedro.pipeline import Pipeline

from statefarm.config import with_keys
from statefarm.data.splits import SplitConfig
from statefarm.evaluation.blending import BlendConfig
from statefarm.modeling.training import TrainingConfig
from statefarm.pipelines import (
    augment_tuning,
    blend,
    collab,
    cross_validation,
    data_prep,
    demo_data,
    inference,
    lr_find,
    names,
    pseudo_label,
    regularization_tuning,
    sampling,
    submission,
    training,
)


class PipelinePlan(NamedTuple):
    """What the whole chain is built for."""

    folds: list[int]
    members: list[str]
    teacher: str
    tunes_augmentations: bool  # False: no model wants the scan's result, so the chain leaves the scan out


DEFAULT_PLAN = PipelinePlan(SplitConfig().folds, [], "own", True)


def plan_pipelines(split: SplitConfig, blend: BlendConfig, training: TrainingConfig) -> PipelinePlan:
    """The plan for the folds ``split`` trains, the members ``blend`` adds, who labels, and
    whether any model (the main one under ``training``, or a member) augments with the scan's result."""
    trainings = [training] + [
        with_keys(training, member.training, f"blend.members.{name}.training") for name, member in blend.members.items()
    ]
    return PipelinePlan(
        split.folds,
        list(blend.members),
        blend.teacher,
        any(training.use_tuned_augmentations for training in trainings),
    )


def _total(pipelines: Iterable[Pipeline]) -> Pipeline:
    return sum(pipelines, Pipeline([]))


def model_pipelines(
    kind: str,
    folds: list[int],
    labels_from: str | None = None,
    member: str | None = None,
    labelled_by: str | None = None,
) -> dict[str, Pipeline]:
    """Training, inference (with the out-of-fold report and fold ensemble) and submission of ``kind``.

    One training and one inference pipeline per fold, under ``<kind>.fold_<k>``; with
    ``labels_from``, fold ``k`` learns from ``<kind>.fold_<k>.pseudo_labels``, made by
    ``<labels_from>.fold_<k>`` (see ``pseudo_label.create_pipeline``), and may start from its weights;
    with ``labelled_by`` too, from ``<labelled_by>.fold_<k>.pseudo_labels`` instead.
    A ``member`` of the blend trains with its own recipe keys.
    """
    trainings = []
    for k in folds:
        init_model = f"{names.fold_model(labels_from, k)}.model" if labels_from else None
        labels = names.fold_model(labelled_by, k) if labelled_by else None
        trainings.append(
            training.create_pipeline(
                names.fold_model(kind, k), f"{names.fold(k)}.driver_split", init_model, member, labels
            )
        )
    return {
        "training": _total(trainings),
        "inference": _total(inference.create_pipeline(names.fold_model(kind, k)) for k in folds)
        + cross_validation.create_pipeline(kind, folds),
        "submission": submission.create_pipeline(kind),
    }


def _model_chain(folds: list[int], member: str | None, labelled_by: str | None) -> tuple[dict, Pipeline]:
    """One architecture's baseline stages, and its pseudo-labelled models (with its own labels unless ``labelled_by``).

    The main model's kinds are ``baseline`` and ``pseudo``; a member's, ``baseline.<member>`` and ``pseudo.<member>``.
    """
    baseline, pseudo = names.kind("baseline", member), names.kind("pseudo", member)
    stages = model_pipelines(baseline, folds, member=member)
    pseudo_models = _total(model_pipelines(pseudo, folds, baseline, member, labelled_by).values())
    if labelled_by is None:
        pseudo_models += pseudo_label.create_pipeline(folds, kind=pseudo, labels_from=baseline)
    return stages, pseudo_models


def build_pipelines(plan: PipelinePlan) -> dict[str, Pipeline]:
    """Each stage, ``pseudo_label`` (also ``__default__``), the whole chain, ``blend`` and ``collab``, for ``plan``.

    With members in ``blend``, each stage runs for the main model and every member
    (``baseline.<member>``, ...), and ``blend`` pools them: ``baseline.blend`` and ``pseudo.blend``.
    With ``blend.teacher: blend``, every pseudo model of fold k learns from
    ``blend_labels.fold_<k>.pseudo_labels``, made by the blend of the fold's baselines.
    When no model augments with the scan's result, the whole chain does not run the scan
    (``augment_tuning`` still runs it on its own). ``regularization_tuning`` trains every fold once per
    arm and is never part of the whole chain: training reads its result when it exists; nor is ``lr_find``.
    """
    folds, members, teacher, tunes_augmentations = plan
    labelled_by = "blend_labels" if members and teacher == "blend" else None
    chains = [_model_chain(folds, member, labelled_by) for member in [None, *members]]
    stages = {
        "demo_data": demo_data.create_pipeline(),
        "data_prep": data_prep.create_pipeline(),
        "sampling": sampling.create_pipeline(folds),
        "augment_tuning": augment_tuning.create_pipeline(),
        "regularization_tuning": regularization_tuning.create_pipeline(),
        "lr_find": lr_find.create_pipeline(),
        **{name: _total(chain[name] for chain, _ in chains) for name in ("training", "inference", "submission")},
    }
    stages["inference"] += inference.create_shared_pipeline()
    blends = _total(
        blend.create_pipeline(names.kind(stage, "blend"), [names.kind(stage, m) for m in [None, *members]])
        + submission.create_pipeline(names.kind(stage, "blend"))
        for stage in ("baseline", "pseudo")
        if members
    )
    blended_labels = (
        pseudo_label.create_blended_pipeline(folds, [names.kind("baseline", m) for m in [None, *members]])
        if labelled_by
        else Pipeline([])
    )
    whole_chain = (
        _total(
            stage
            for name, stage in stages.items()
            if name not in ("demo_data", "regularization_tuning", "lr_find")
            and (name != "augment_tuning" or tunes_augmentations)
        )
        + blended_labels
        + _total(pseudo_models for _, pseudo_models in chains)
        + pseudo_label.create_comparison(kind="pseudo", labels_from="baseline")
        + blends
    )
    return stages | {
        "pseudo_label": whole_chain,
        "blend": blends,
        "collab": collab.create_pipeline(),
        "__default__": whole_chain,
    }
