"""Process-parallel map for the CPU-bound image work (header checks, JPEG decodes)."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Below this many items the start-up of worker processes costs more than it saves.
MIN_ITEMS_FOR_PROCESSES = 256


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
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return list(pool.map(fn, items, chunksize=chunksize))
