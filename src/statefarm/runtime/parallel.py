"""Process-parallel map for the CPU-bound image work (header checks, JPEG decodes)."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

logger = logging.getLogger(__name__)

# Below this many items the start-up of worker processes costs more than it saves.
MIN_ITEMS_FOR_PROCESSES = 256
_PR_SET_PDEATHSIG = 1


def exit_with_parent() -> None:
    """Worker initializer: on Linux, have the kernel end this process when its parent dies.

    Pool workers wait on a queue whose write end they hold themselves, so a parent
    killed with SIGKILL would otherwise leave them waiting forever.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
        logger.warning("could not ask to end with the parent process (errno %d)", ctypes.get_errno())
    if os.getppid() == 1:  # the parent died before the request was made
        os._exit(1)


def resolve_num_workers(num_workers: int | None) -> int:
    """Return the number of worker processes to use: ``None`` means every usable core."""
    if num_workers is None:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if num_workers < 1:
        raise ValueError(f"num_workers must be a positive integer or null, got {num_workers}")
    return num_workers


def parallel_map(
    fn: Callable[[T], R],
    items: Sequence[T] | Iterable[T],
    num_workers: int | None = None,
    min_items: int | None = None,
) -> list[R]:
    """Apply ``fn`` to every item, in order, over a pool of worker processes.

    Workers are spawned rather than forked, so the pool is safe to start from a
    Kedro runner or next to MLflow's background threads. ``fn`` must be a
    module-level function.

    Args:
        fn: Picklable function of one argument.
        items: The arguments.
        num_workers: Processes to use; ``None`` for every core, 1 to run in this process.
        min_items: Run in this process when there are fewer items; ``None`` for
            ``MIN_ITEMS_FOR_PROCESSES``. Pass 1 when each item is a large batch of work.

    Returns:
        ``[fn(item) for item in items]``.
    """
    items = list(items)
    workers = min(resolve_num_workers(num_workers), max(len(items), 1))
    if workers == 1 or len(items) < (MIN_ITEMS_FOR_PROCESSES if min_items is None else min_items):
        return [fn(item) for item in items]
    chunksize = max(1, len(items) // (workers * 8))
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=exit_with_parent) as pool:
        return list(pool.map(fn, items, chunksize=chunksize))
