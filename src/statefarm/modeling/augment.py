"""Augmentation specs: albumentations transforms by name, from parameters.

A spec is a list of one-key mappings, transform name to its arguments, exactly
as albumentations spells them::

    - Affine: {translate_percent: 0.1, p: 0.5}
    - RandomBrightnessContrast: {brightness_limit: 0.2, contrast_limit: 0.2, p: 0.5}

Transforms work on the cached uint8 images; normalization happens later, on the
device. No flips by default: whether the phone is in the left or right hand is
the difference between classes here.
"""

from __future__ import annotations

import inspect
from typing import Any

import albumentations as A

AugmentSpec = list[dict[str, dict[str, Any]]]


def build_transform(spec: AugmentSpec | None, seed: int | None = None, key: str = "augment") -> A.Compose | None:
    """Compose the transforms of ``spec``; ``None`` for an empty spec.

    Args:
        spec: One-key mappings ``{TransformName: kwargs}``.
        seed: Makes the random draws reproducible (``A.Compose(seed=...)``).
        key: Parameter name used in error messages.

    Raises:
        ValueError: Naming the entry, when a name is not an albumentations
            transform or its arguments are invalid.
    """
    if not spec:
        return None
    transforms = []
    for position, entry in enumerate(spec):
        if not isinstance(entry, dict) or len(entry) != 1:
            raise ValueError(f"{key}[{position}]: expected one 'TransformName: {{arguments}}' mapping, got {entry!r}")
        ((name, kwargs),) = entry.items()
        transform_class = getattr(A, name, None)
        if not (isinstance(transform_class, type) and issubclass(transform_class, A.BasicTransform)):
            raise ValueError(f"{key}[{position}]: albumentations has no transform named {name!r}")
        kwargs = kwargs or {}
        accepted = inspect.signature(transform_class.__init__).parameters
        unknown = sorted(set(kwargs) - set(accepted))
        if unknown and not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values()):
            # albumentations only warns about these; a misspelled strength would silently do nothing
            raise ValueError(f"{key}[{position}] ({name}): unknown argument(s) {unknown}")
        try:
            transforms.append(transform_class(**kwargs))
        except Exception as error:
            raise ValueError(f"{key}[{position}] ({name}): invalid arguments {kwargs!r}: {error}") from error
    return A.Compose(transforms, seed=seed)


def at_input_size(
    transform: A.Compose | None, cache_size: tuple[int, int], input_size: tuple[int, int], seed: int | None = None
) -> A.Compose | None:
    """``transform`` on the cached images resized to the network's ``input_size`` first; as is at the cache's size.

    Resizing first augments at the size the network sees, as a cache made at that size would.
    """
    if tuple(input_size) == tuple(cache_size):
        return transform
    resize = A.Resize(height=int(input_size[0]), width=int(input_size[1]))
    return A.Compose([resize, *(transform.transforms if transform is not None else [])], seed=seed)
