"""Data-parallel training on ``torch.distributed``: one process per device, started by torch's elastic launcher.

With ``runtime.devices`` above 1, ``training.fit_on_rows`` hands its work to ``launch``:
the elastic agent behind ``torchrun`` starts one worker per device it claimed
(``placement``), each worker runs the same training on its share of every epoch (``DistributedSampler``, or a sharded
``MixedBatchSampler``), DDP all-reduces the gradients, and rank 0 alone writes checkpoints
and metrics. Rank 0's result comes back to the Kedro node that launched them.

On CUDA the workers talk over NCCL, one GPU each; on a CPU over gloo (the tests). Several
machines: run the same ``kedro run`` on each, with ``runtime.nodes`` and a
``runtime.rendezvous`` host:port that all of them reach (torch's c10d rendezvous).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.launcher.api import LaunchConfig, elastic_launch


def world_size(devices: int | str) -> int:
    """Processes per machine: ``devices``, or every visible GPU for ``auto`` (one process on a CPU)."""
    if devices == "auto":
        return max(torch.cuda.device_count(), 1)
    return int(devices)


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def ranks() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main() -> bool:
    """Rank 0, or the only process: the one that writes checkpoints, metrics and logs."""
    return rank() == 0


def all_agree(flag: torch.Tensor) -> torch.Tensor:
    """``flag`` (a 0-d bool tensor) true on every rank; the flag itself without data parallelism."""
    if not dist.is_initialized():
        return flag
    agreed = flag.to(torch.float32)
    dist.all_reduce(agreed, op=dist.ReduceOp.MIN)
    return agreed.bool()


def gather_in_order(shard: torch.Tensor, total: int) -> torch.Tensor:
    """Every rank's ``shard`` of a ``DistributedSampler(shuffle=False)`` split, back in the dataset's order.

    Rank ``r`` holds items ``r, r + W, r + 2W, ...`` (padded to equal length by wrapping
    around); the result has the ``total`` items once each, on every rank.
    """
    if not dist.is_initialized():
        return shard
    gathered = [torch.empty_like(shard) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, shard.contiguous())
    return torch.stack(gathered, dim=1).flatten(0, 1)[:total]


def cpu_threads_per_process(local_ranks: int) -> int:
    """Each of a machine's ``local_ranks`` CPU processes gets its share of the cores, not all of them."""
    return max(1, (os.cpu_count() or 1) // local_ranks)


def _worker(function: Callable[..., Any], args: tuple, devices: list[torch.device]) -> Any:
    local_rank, local_ranks = int(os.environ["LOCAL_RANK"]), int(os.environ["LOCAL_WORLD_SIZE"])
    # A spawned process starts without the run's logging: rank 0 speaks (its epoch lines), the others only warn.
    main = os.environ.get("RANK") == "0"
    logging.basicConfig(level=logging.INFO if main else logging.WARNING, format="%(asctime)s rank 0  %(message)s")
    if devices[local_rank].type == "cuda":
        torch.cuda.set_device(devices[local_rank])
    else:
        torch.set_num_threads(cpu_threads_per_process(local_ranks))
    dist.init_process_group("nccl" if devices[local_rank].type == "cuda" else "gloo")
    try:
        return function(*args)
    finally:
        dist.destroy_process_group()


def launch(
    function: Callable[..., Any], args: tuple, devices: list[torch.device], nodes: int = 1, rendezvous: str = ""
) -> Any:
    """``function(*args)`` in one worker per device of ``devices`` on each of ``nodes`` machines; rank 0's result.

    ``function`` and ``args`` must pickle (workers are spawned). A worker that fails
    fails the launch with its error; nothing is restarted. On a machine without rank 0
    the result is ``None``.
    """
    config = LaunchConfig(
        min_nodes=nodes,
        max_nodes=nodes,
        nproc_per_node=len(devices),
        rdzv_backend="c10d",
        rdzv_endpoint=rendezvous or "localhost:0",  # port 0: a free one, on one machine
        # One machine: a run of its own per launch, as folds may launch side by side from threads.
        run_id="statefarm" if nodes > 1 else f"statefarm-{os.getpid()}-{threading.get_ident()}",
        max_restarts=0,
        start_method="spawn",
        monitor_interval=0.2,
    )
    results = elastic_launch(config, _worker)(function, args, devices)
    return results.get(0)
