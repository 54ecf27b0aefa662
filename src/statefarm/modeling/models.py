"""Models by name: any ``timm`` architecture, plus the lesson's two baselines.

The baselines are registered with timm's model registry, so ``timm.create_model``
builds them like any other architecture and every stage handles one kind of model.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import timm
import torch
from pydantic import Field, PositiveInt, field_validator
from timm.models import register_model
from torch import nn

from statefarm.config import Params
from statefarm.modeling.weight_maps import WeightMapError, load_mapped_weights, read_weights_file, resolve_weights_file

__all__ = [
    "NUM_CLASSES",
    "LinearBaseline",
    "ModelConfig",
    "PretrainedWeightsError",
    "SmallCNN",
    "create_model",
    "model_data_config",
]  # fmt: skip  (timm's register_model appends the registered names)

logger = logging.getLogger(__name__)

NUM_CLASSES = 10

# Inputs arrive as 0..1 floats; the baselines learn their own normalization in a BatchNorm.
_BASELINE_CFG = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0), "input_size": (3, 224, 224)}


class ModelConfig(Params):
    """Which network to build; keys match ``timm.create_model``'s arguments."""

    name: str = Field(..., description="a timm architecture, statefarm_linear or statefarm_small_cnn")
    pretrained: bool = False
    pretrained_file: str | None = Field(
        None, description="local weights file when the hub is unreachable; package:<pkg>/<path> for a packaged one"
    )
    weight_map: Literal["efficientnet_pytorch"] | None = Field(
        None, description="the file holds another library's tensor names; rename them with this map"
    )
    drop_rate: float | None = Field(None, ge=0, lt=1, description="dropout before the classifier; null: timm's")
    drop_path_rate: float | None = Field(None, ge=0, lt=1)
    input_size: tuple[PositiveInt, PositiveInt] | None = Field(
        None,
        description="(height, width) the network sees, the cached images resized to it, or HEIGHTxWIDTH; "
        "null: the cache's size",
    )

    @field_validator("input_size", mode="before")
    @classmethod
    def _height_by_width(cls, value: Any) -> Any:
        # "96x128" too: --params splits on commas, so a list cannot pass through it.
        if not isinstance(value, str):
            return value
        height, _, width = value.partition("x")
        if not (height.strip().isdigit() and width.strip().isdigit()):
            raise ValueError(f"expected HEIGHTxWIDTH (96x128) or [height, width], got {value!r}")
        return int(height), int(width)


class PretrainedWeightsError(RuntimeError):
    """Pretrained weights were asked for and could not be loaded."""


class LinearBaseline(nn.Module):
    """The lesson's linear model: BatchNorm on the raw input, then one dense layer."""

    def __init__(self, num_classes: int = NUM_CLASSES, in_chans: int = 3, image_size: int = 64, **_: Any) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.pool = nn.AdaptiveAvgPool2d(image_size)  # any input size becomes one fixed vector
        self.norm = nn.BatchNorm2d(in_chans)
        self.head = nn.Linear(in_chans * image_size * image_size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.norm(self.pool(x)), 1))

    def get_classifier(self) -> nn.Module:
        """The final layer, as timm models name it (its input is the image's feature vector)."""
        return self.head


class SmallCNN(nn.Module):
    """The lesson's small CNN: input BatchNorm, conv-BN-ReLU-maxpool blocks, then dense."""

    def __init__(
        self,
        num_classes: int = NUM_CLASSES,
        in_chans: int = 3,
        widths: tuple[int, ...] = (32, 64, 128),
        drop_rate: float = 0.0,
        **_: Any,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        layers: list[nn.Module] = [nn.BatchNorm2d(in_chans)]
        for width_in, width_out in zip((in_chans, *widths[:-1]), widths, strict=True):
            layers += [
                nn.Conv2d(width_in, width_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(width_out),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
        self.features = nn.Sequential(*layers)
        # A coarse grid, not a global pool: where the hand is, is what tells the classes apart.
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d((4, 4)),
            nn.Flatten(),
            nn.Dropout(drop_rate),
            nn.Linear(widths[-1] * 16, 200),
            nn.ReLU(inplace=True),
            nn.Dropout(drop_rate),
            nn.Linear(200, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def get_classifier(self) -> nn.Module:
        """The final layer, as timm models name it (its input is the image's feature vector)."""
        return self.head[-1]


def _baseline(model_class: type[nn.Module], pretrained: bool, **kwargs: Any) -> nn.Module:
    if pretrained:
        raise PretrainedWeightsError(f"{model_class.__name__} has no pretrained weights; set model.pretrained: false")
    kwargs.pop("drop_path_rate", None)
    model = model_class(**kwargs)
    model.pretrained_cfg = dict(_BASELINE_CFG, num_classes=model.num_classes)
    return model


@register_model
def statefarm_linear(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """Linear model with a BatchNorm input layer (the lesson's first baseline)."""
    kwargs.pop("drop_rate", None)
    return _baseline(LinearBaseline, pretrained, **kwargs)


@register_model
def statefarm_small_cnn(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """Three conv-BN-ReLU-maxpool blocks and a dense head (the lesson's second baseline)."""
    return _baseline(SmallCNN, pretrained, **kwargs)


def create_model(config: ModelConfig, num_classes: int = NUM_CLASSES) -> nn.Module:
    """Build ``config.name`` with ``num_classes`` outputs.

    Pretrained weights come from the Hugging Face hub, or from ``pretrained_file``
    when set. When they cannot be loaded the run stops and says how to fix it,
    rather than quietly training from random weights.

    Raises:
        ValueError: The name is not a timm or statefarm architecture.
        PretrainedWeightsError: Pretrained weights were asked for and are unavailable.
    """
    if not timm.is_model(config.name):
        close = timm.list_models(f"*{config.name.split('.')[0][:6]}*")[:8]
        raise ValueError(f"model.name {config.name!r} is not a timm architecture; similar names: {close}")
    kwargs: dict[str, Any] = {"num_classes": num_classes}
    for key in ("drop_rate", "drop_path_rate"):
        if getattr(config, key) is not None:
            kwargs[key] = getattr(config, key)
    if config.pretrained and config.weight_map is not None:
        model = _create_with_mapped_weights(config, kwargs)
    else:
        model = _create_with_timm_weights(config, kwargs)
    return _zero_classifier(model) if config.pretrained else model


def check_weights_file(config: ModelConfig, key: str = "model") -> None:
    """Read ``config``'s weights file now, when it has one, so that a missing or damaged file stops the run at once.

    Raises:
        PretrainedWeightsError: Naming ``<key>.pretrained_file`` and the file.
    """
    if not (config.pretrained and config.pretrained_file):
        return
    try:
        read_weights_file(resolve_weights_file(config.pretrained_file))
    except WeightMapError as error:
        raise PretrainedWeightsError(f"{key}.pretrained_file: {error}") from None


def _create_with_timm_weights(config: ModelConfig, kwargs: dict[str, Any]) -> nn.Module:
    """timm's model, with its pretrained weights from the hub or ``pretrained_file`` when asked for."""
    if config.pretrained_file:
        kwargs["pretrained_cfg_overlay"] = {"file": str(resolve_weights_file(config.pretrained_file))}
    try:
        return timm.create_model(config.name, pretrained=config.pretrained, **kwargs)
    except (PretrainedWeightsError, WeightMapError):
        raise
    except Exception as error:
        if not config.pretrained:
            raise
        source = config.pretrained_file or "the Hugging Face hub"
        raise PretrainedWeightsError(
            f"could not load pretrained weights for {config.name!r} from {source} "
            f"({type(error).__name__}: {error}). Without network access, download the weights "
            "elsewhere (e.g. `huggingface-cli download timm/<name>` or timm.create_model(..., pretrained=True) "
            "on a connected machine, then torch.save(model.state_dict(), 'weights.pth')) and set "
            "model.pretrained_file to that file; or set model.pretrained: false to train from scratch."
        ) from error


def _create_with_mapped_weights(config: ModelConfig, kwargs: dict[str, Any]) -> nn.Module:
    """Build the architecture, then load ``pretrained_file`` through ``weight_map`` (checked tensor by tensor)."""
    if not config.pretrained_file:
        raise PretrainedWeightsError("model.weight_map is set but model.pretrained_file is not: name the weights file")
    model = timm.create_model(config.name, pretrained=False, **kwargs)
    try:
        load_mapped_weights(model, resolve_weights_file(config.pretrained_file), config.weight_map)
    except WeightMapError as error:
        raise PretrainedWeightsError(f"model.pretrained_file for {config.name!r}: {error}") from None
    logger.info("Loaded %s into %s through the %s weight map", config.pretrained_file, config.name, config.weight_map)
    return model


def _zero_classifier(model: nn.Module) -> nn.Module:
    """Start the new classifier of a pretrained model at zero: every class at 1/10, loss ln 10.

    Some timm inits scale with the number of outputs: EfficientNet's draws the classifier
    from +/-1/sqrt(num_classes), so with 10 classes its first logits on pretrained
    features have a spread near 9 and a loss above 20. Their gradients wreck the pretrained
    body in the first steps, before the head has learnt anything.
    """
    classifier = model.get_classifier()
    if isinstance(classifier, nn.Linear):
        nn.init.zeros_(classifier.weight)
        if classifier.bias is not None:
            nn.init.zeros_(classifier.bias)
    return model


def model_data_config(model: nn.Module, image_size: tuple[int, int]) -> dict[str, Any]:
    """The normalization the model expects (from timm) and the input size it is trained at."""
    data_config = timm.data.resolve_model_data_config(model)
    return {
        "mean": [float(v) for v in data_config["mean"]],
        "std": [float(v) for v in data_config["std"]],
        "input_size": [3, int(image_size[0]), int(image_size[1])],
        "interpolation": data_config.get("interpolation", "bilinear"),
    }
