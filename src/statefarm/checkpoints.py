"""Checkpoints on disk, written so that a crash never replaces a good one with a bad one."""

from __future__ import annotations

import os
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


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint written by ``save_atomic`` onto the CPU."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    # Our checkpoints hold plain Python containers besides tensors; they are our own files.
    return torch.load(path, map_location="cpu", weights_only=False)


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
