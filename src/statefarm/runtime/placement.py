"""Which GPUs a node works on, so that folds train side by side when a machine has more GPUs than one model needs.

Under Kedro's ``ThreadRunner`` (``kedro run --runner=ThreadRunner``) nodes that do not
depend on each other, such as the folds' training and inference, run at the same time in
threads of one process. Each of them claims the GPUs it needs here (one, or
``runtime.devices`` for a data-parallel model) for as long as it runs: the free ones with
the lowest indices, waiting until enough are free. Eight GPUs and five folds of one GPU
each train the five folds at once; under the default ``SequentialRunner`` every claim
finds every GPU free, and nothing changes. A CPU, or a GPU named by index
(``runtime.device: cuda:3``), is used as given and never waited for.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from statefarm.modeling.engine import resolve_device


class DevicePool:
    """GPU indices ``0 .. size - 1``, each held by at most one claim at a time (threads of one process)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._busy: set[int] = set()
        self._changed = threading.Condition()

    @contextmanager
    def claim(self, count: int) -> Iterator[list[int]]:
        """Hold the ``count`` lowest free indices until the block ends, waiting until that many are free."""
        if not 1 <= count <= self.size:
            raise ValueError(f"runtime.devices asks for {count} GPUs; this machine has {self.size}")
        with self._changed:
            self._changed.wait_for(lambda: self.size - len(self._busy) >= count)
            held = sorted(set(range(self.size)) - self._busy)[:count]
            self._busy.update(held)
        try:
            yield held
        finally:
            with self._changed:
                self._busy.difference_update(held)
                self._changed.notify_all()


_gpus: DevicePool | None = None
_gpus_created = threading.Lock()


def _gpu_pool() -> DevicePool:
    global _gpus
    with _gpus_created:
        if _gpus is None:
            _gpus = DevicePool(torch.cuda.device_count())
        return _gpus


@contextmanager
def claim_devices(device: str, count: int = 1) -> Iterator[list[torch.device]]:
    """The ``count`` devices a node runs on, held until the block ends.

    ``device`` is a ``runtime.device`` value. ``cuda`` (or ``auto``
    on a GPU machine) claims free GPUs from the machine's pool; anything else is yielded
    as resolved, ``count`` times.
    """
    resolved = resolve_device(device)
    if resolved.type != "cuda" or resolved.index is not None:
        yield [resolved] * count
        return
    with _gpu_pool().claim(count) as indices:
        yield [torch.device("cuda", index) for index in indices]
