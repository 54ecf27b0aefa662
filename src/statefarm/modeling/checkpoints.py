"""Checkpoints on disk, written so that a crash never replaces a good one with a bad one."""

from __future__ import annotations

import errno
import os
import pickle
import reprlib
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from statefarm.runtime.atomic import write_atomic


def save_atomic(state: dict[str, Any], path: Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename it over ``path``.

    Raises:
        OSError: ``ENOSPC`` naming ``path`` when the disk is full (torch reports that
            as an ``inline_container`` RuntimeError or a bare OSError).
    """
    path = Path(path)
    try:
        write_atomic(path, lambda partial: torch.save(state, partial))
    except (OSError, RuntimeError) as error:
        disk_full = getattr(error, "errno", None) == errno.ENOSPC or "inline_container" in str(error)
        if not disk_full:
            raise
        free = shutil.disk_usage(path.parent).free
        raise OSError(
            errno.ENOSPC,
            f"no space left on device writing {path} ({free / 2**20:.0f} MiB free there); "
            f"the previous {path.name}, if any, is untouched",
        ) from error


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


class CheckpointMismatchError(ValueError):
    """A checkpoint was made by a run with another recipe or split than the one resuming it."""


def check_same_run(saved: dict[str, Any] | None, current: dict[str, Any], path: Path) -> None:
    """Refuse to resume from a checkpoint made with another recipe or split, naming what differs.

    Raises:
        CheckpointMismatchError: ``saved`` (the checkpoint's) and ``current`` (this run's) differ.
    """
    different = differences(saved or {}, current)
    if different:
        named = describe_differences(different, "in the checkpoint")
        raise CheckpointMismatchError(
            f"cannot resume from {path}: it was made by a run with another recipe or split ({named}); "
            f"set training.resume: false to start afresh (the old checkpoints are moved aside, not deleted)"
        )


_ABSENT = object()  # a key one of the two runs does not have (e.g. one added to the recipe since)


def _shown(value: Any) -> str:
    return "absent" if value is _ABSENT else reprlib.repr(value)


def describe_differences(different: list[tuple[str, Any, Any]], where: str) -> str:
    """``key: saved <where>, current now; ...`` for ``differences``' findings."""
    return "; ".join(f"{key}: {_shown(was)} {where}, {_shown(now)} now" for key, was, now in different)


def differences(saved: dict[str, Any], current: dict[str, Any], prefix: str = "") -> list[tuple[str, Any, Any]]:
    """``(dotted key, saved value, current value)`` for every leaf where two run descriptions differ."""
    found = []
    for key in sorted(set(saved) | set(current)):
        was, now = saved.get(key, _ABSENT), current.get(key, _ABSENT)
        if isinstance(was, dict) and isinstance(now, dict):
            found += differences(was, now, f"{prefix}{key}.")
        elif was != now:
            found.append((f"{prefix}{key}", was, now))
    return found


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

    def set_aside(self) -> Path | None:
        """Move an earlier run's checkpoints into ``replaced-<UTC time>/`` of the folder; return it, if any."""
        earlier = sorted(self.directory.glob("*.pt"))
        if not earlier:
            return None
        aside = self.directory / f"replaced-{datetime.now(UTC):%Y%m%dT%H%M%S.%f}"
        aside.mkdir()
        for path in earlier:
            os.replace(path, aside / path.name)
        return aside
