"""Every parameter of the project, checked against its schema once, before any node runs.

Each group has the schema its nodes name in their signatures (``split: SplitConfig``, ...),
and Kedro hands them each group validated into it; this module gathers them all, so that a
misspelled group or key, a value out of range, a damaged weights file or a transform that
cannot be built stops ``kedro run`` at once with its name instead of after an hour of
training, or never (a misspelled group is otherwise just ignored).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from pydantic import Field

from statefarm.config import Params, parse_params
from statefarm.data.demo_data import DemoDataConfig
from statefarm.data.splits import SampleConfig, SplitConfig
from statefarm.data.submission import SubmissionConfig
from statefarm.evaluation.blending import BlendConfig, member_recipe, member_runtime
from statefarm.evaluation.inference import InferenceConfig
from statefarm.evaluation.pseudo_labels import PseudoLabelConfig
from statefarm.modeling.augment import AugmentSpec, build_transform
from statefarm.modeling.augment_tuning import TuningConfig
from statefarm.modeling.lr_finder import LrFindConfig
from statefarm.modeling.models import ModelConfig, check_weights_file
from statefarm.modeling.optim import AnnealerConfig, OptimizerConfig, SchedulerConfig
from statefarm.modeling.regularization_tuning import RegularizationTuningConfig, arm_recipe
from statefarm.modeling.training import Recipe, TrainingConfig
from statefarm.pipelines.collab.nodes import CollabConfig
from statefarm.pipelines.data_prep.nodes import ImageCacheConfig
from statefarm.runtime.config import RuntimeConfig


class ProjectParameters(Params):
    """The parameter groups of ``conf/base``, each with its schema."""

    seed: int
    num_workers: int | None = Field(..., ge=1)
    demo_data: DemoDataConfig
    image_cache: ImageCacheConfig
    split: SplitConfig
    sample: SampleConfig
    augment_tuning: TuningConfig
    regularization_tuning: RegularizationTuningConfig
    lr_find: LrFindConfig
    model: ModelConfig
    optimizer: OptimizerConfig
    scheduler: SchedulerConfig
    annealer: AnnealerConfig
    training: TrainingConfig
    augment: AugmentSpec | None
    blend: BlendConfig
    inference: InferenceConfig
    pseudo_label: PseudoLabelConfig
    submission: SubmissionConfig
    runtime: RuntimeConfig
    collab: CollabConfig

    def recipe(self) -> Recipe:
        """The main model's recipe."""
        return Recipe(self.model, self.optimizer, self.scheduler, self.annealer, self.training)


def validate_parameters(parameters: Mapping[str, Any]) -> ProjectParameters:
    """Check every group and key; build every augmentation once and read every weights file, so that a bad
    transform or a damaged file fails now too.

    Raises:
        ValueError: Naming each unknown group (with the nearest known one) or bad key.
        PretrainedWeightsError: Naming the ``pretrained_file`` that cannot be read.
    """
    known = list(ProjectParameters.model_fields)
    unknown = [name for name in parameters if name not in known]
    if unknown:
        hints = [
            f"{name!r}" + "".join(f" (did you mean {close!r}?)" for close in difflib.get_close_matches(name, known, 1))
            for name in unknown
        ]
        raise ValueError(f"Invalid parameters: unknown group(s) {', '.join(hints)}; the groups are {known}")
    validated = parse_params(ProjectParameters, parameters, "")
    models = {"model": validated.model}
    if validated.augment_tuning.model is not None:
        models["augment_tuning.model"] = validated.augment_tuning.model
    main = validated.recipe()
    for name, member in validated.blend.members.items():  # each member's recipe, as its nodes will read it
        models[f"blend.members.{name}.model"] = member_recipe(main, member, f"blend.members.{name}.").model
        member_runtime(validated.runtime, member, f"blend.members.{name}.runtime")
    for candidate in validated.regularization_tuning.candidates.values():  # every arm's recipe can be built
        for value in candidate.values:
            arm_recipe(main, {candidate.key: value})
    for key, model in models.items():
        check_weights_file(model, key)
    build_transform(validated.augment, key="augment")
    for view, spec in enumerate(validated.inference.tta):
        build_transform(spec, key=f"inference.tta[{view}]")
    return validated
