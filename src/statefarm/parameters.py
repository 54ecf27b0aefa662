"""Every parameter of the project, checked against its schema once, before any node runs.

Each group has the schema its node parses (``split`` is ``SplitConfig``, ...); this
module only gathers them, so that a misspelled group or key, or a value out of range,
stops ``kedro run`` at once with its name instead of after an hour of training, or
never (a misspelled group is otherwise just ignored).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from pydantic import Field

from statefarm.config import Params, parse_params
from statefarm.data.demo_data import DemoDataConfig
from statefarm.data.splits import SampleConfig, SplitConfig
from statefarm.evaluation.blending import BlendConfig, member_recipe, member_runtime
from statefarm.evaluation.inference import InferenceConfig
from statefarm.evaluation.pseudo_labels import PseudoLabelConfig
from statefarm.modeling.augment import AugmentSpec, build_transform
from statefarm.modeling.augment_tuning import TuningConfig
from statefarm.modeling.models import ModelConfig, check_weights_file
from statefarm.modeling.optim import AnnealerConfig, OptimizerConfig, SchedulerConfig
from statefarm.modeling.training import Recipe, TrainingConfig
from statefarm.pipelines.collab.nodes import CollabConfig
from statefarm.pipelines.data_prep.nodes import ImageCacheConfig
from statefarm.runtime.config import RuntimeConfig


class SubmissionConfig(Params):
    """How the submission file is written, and whether it is uploaded."""

    clip: float = Field(0.001, ge=0, lt=0.1, description="probabilities are kept in [clip, 1 - clip]")
    submit: bool = Field(False, description="upload to Kaggle (one of the daily submissions)")
    message: str = ""


class ProjectParameters(Params):
    """The parameter groups of ``conf/base``, each with its schema."""

    seed: int
    num_workers: int | None = Field(..., ge=1)
    demo_data: DemoDataConfig
    image_cache: ImageCacheConfig
    split: SplitConfig
    sample: SampleConfig
    augment_tuning: TuningConfig
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
    for name in validated.blend.members:  # each member's recipe, as its nodes will read it
        recipe = Recipe.from_params(
            member_recipe(parameters, parameters["blend"]["members"][name]), key=f"blend.members.{name}."
        )
        models[f"blend.members.{name}.model"] = recipe.model
        member_runtime(parameters["runtime"], parameters["blend"]["members"][name], f"blend.members.{name}.runtime")
    for key, model in models.items():
        check_weights_file(model, key)
    build_transform(validated.augment, key="augment")
    for view, spec in enumerate(validated.inference.tta):
        build_transform(spec, key=f"inference.tta[{view}]")
    return validated
