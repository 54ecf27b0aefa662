"""Checkpoints on disk, written so that a crash never replaces a good one with a bad one."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch


def save_atomic(state: dict[str, Any], path: Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        torch.save(state, partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


class UnsafeCheckpointError(ValueError):
    """A checkpoint holds objects that unpickling would have to construct (and so could run code)."""


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint written by ``save_atomic`` onto the CPU: tensors and plain Python values only.

    Raises:
        UnsafeCheckpointError: The file holds any other object; it is not loaded.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise UnsafeCheckpointError(
            f"refusing to load {path}: it holds objects other than tensors and plain Python values, which "
            f"unpickling could use to run code; statefarm never writes such checkpoints ({error})"
        ) from None


class CheckpointStore:
    """A folder of named checkpoints (``last``, ``best``) for one training run."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def path(self, name: str) -> Path:
        return self.directory / f"{name}.pt"

    def exists(self, name: str) -> bool:
        return self.path(name).is_file()

    def save(self, name: str, state: dict[str, Any]) -> Path:
        save_atomic(state, self.path(name))
        return self.path(name)

    def load(self, name: str) -> dict[str, Any]:
        return load_checkpoint(self.path(name))
