"""The chain's dataset names, made and read in one place.

A *kind* is a family of fold models that is scored and submitted as one: ``baseline``,
``pseudo``, a blend member's ``baseline.<member>``, a blend's ``baseline.blend``. Fold ``k``
of a kind is the namespace ``<kind>.fold_<k>`` (``baseline.fold_0.model``), and what every
kind of fold ``k`` shares is under ``fold_<k>`` (``fold_0.driver_split``).
"""

from __future__ import annotations

import re

_FOLD_MODEL = re.compile(r"(?P<kind>.+)\.fold_(?P<fold>\d+)")


def fold(k: int) -> str:
    """``fold_<k>``: the namespace of what fold ``k``'s models share, and a per-fold key."""
    return f"fold_{k}"


def fold_model(kind: str, k: int) -> str:
    """``<kind>.fold_<k>``: the namespace of ``kind``'s model of fold ``k``."""
    return f"{kind}.{fold(k)}"


def kind_of(model: str) -> str:
    """The kind of a fold model's namespace, ``baseline`` for ``baseline.fold_0``; a name that is not one, unchanged."""
    match = _FOLD_MODEL.fullmatch(model)
    return match["kind"] if match else model


def any_fold(name: str) -> str:
    """``name`` with every fold number starred, ``baseline.fold_*.train_model``: the stage across its folds."""
    return re.sub(r"\bfold_\d+\b", "fold_*", name)


def kind(stage: str, member: str | None = None) -> str:
    """The kind of ``stage`` (``baseline``, ``pseudo``) for a blend ``member``, or for the main model."""
    return f"{stage}.{member}" if member else stage
