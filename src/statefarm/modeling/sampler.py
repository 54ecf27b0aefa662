"""``MixedBatchSampler``: every batch holds an exact share of pseudo-labelled items.

Written here because no library ships it. The lesson's rule for pseudo-labelling is
that 1/4 to 1/3 of each batch should be pseudo-labelled; sampling the two pools at
random only gets that on average, and a batch that happens to be mostly pseudo-labels
pulls the model towards its own mistakes.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler


class MixedBatchSampler(Sampler[list[int]]):
    """Batches of ``batch_size`` with exactly ``round(fraction * batch_size)`` pseudo-labelled items.

    The dataset holds the labelled items at indices ``[0, labelled)`` and the
    pseudo-labelled ones at ``[labelled, labelled + pseudo)``. An epoch is one pass
    over the labelled items, each exactly once (the last batch may hold fewer of
    them), or over a fresh random ``labelled_share`` of them; pseudo-labelled items
    are drawn without replacement, reshuffled when the pool runs out. Shuffles depend
    only on ``seed`` and the epoch (``set_epoch``), so a resumed run draws the same batches.

    With ``world_size`` > 1 (data-parallel training) each rank draws its own batches of
    ``batch_size``, each with the exact share: every rank shuffles alike, then takes every
    ``world_size``-th labelled and pseudo-labelled item from ``rank`` on. The labelled
    items are padded with the first few of the shuffle to a multiple of ``world_size`` (as
    ``DistributedSampler`` does), so that every rank makes the same number of steps.

    Args:
        labelled: Number of labelled items.
        pseudo: Number of pseudo-labelled items (at least one).
        batch_size: Items per batch (per rank).
        fraction: Share of pseudo-labelled items per batch, in ``(0, 1)``.
        seed: Seeds the shuffles.
        rank: This process's rank.
        world_size: How many processes share the epoch.
        labelled_share: Share of the labelled items an epoch passes over, in ``(0, 1]``:
            a model fine-tuned from one that has seen them all needs fewer steps.
    """

    def __init__(
        self,
        labelled: int,
        pseudo: int,
        batch_size: int,
        fraction: float,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        labelled_share: float = 1.0,
    ) -> None:
        if not 0 < fraction < 1:
            raise ValueError(f"pseudo-label fraction must be in (0, 1), got {fraction}")
        self.pseudo_per_batch = round(fraction * batch_size)
        self.labelled_per_batch = batch_size - self.pseudo_per_batch
        if self.pseudo_per_batch < 1 or self.labelled_per_batch < 1:
            raise ValueError(
                f"batch_size {batch_size} with fraction {fraction} leaves {self.pseudo_per_batch} pseudo-labelled "
                f"and {self.labelled_per_batch} labelled items per batch; both must be at least 1"
            )
        if not 0 < labelled_share <= 1:
            raise ValueError(f"labelled share must be in (0, 1], got {labelled_share}")
        if labelled < 1 or pseudo < 1:
            raise ValueError(f"need labelled and pseudo-labelled items, got {labelled} and {pseudo}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not among {world_size} processes")
        self.labelled, self.pseudo, self.seed, self.epoch = labelled, pseudo, seed, 0
        self.rank, self.world_size = rank, world_size
        self.per_epoch = max(1, round(labelled_share * labelled))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        per_rank = -(-self.per_epoch // self.world_size)
        return -(-per_rank // self.labelled_per_batch)

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        labelled = rng.permutation(self.labelled)[: self.per_epoch]
        labelled = np.resize(labelled, -(-self.per_epoch // self.world_size) * self.world_size)  # pads by wrapping
        labelled = labelled[self.rank :: self.world_size]
        needed = len(self) * self.pseudo_per_batch * self.world_size
        pseudo = np.concatenate([rng.permutation(self.pseudo) for _ in range(-(-needed // self.pseudo))])
        pseudo = pseudo[self.rank :: self.world_size]
        for batch in range(len(self)):
            own = labelled[batch * self.labelled_per_batch : (batch + 1) * self.labelled_per_batch]
            drawn = pseudo[batch * self.pseudo_per_batch : (batch + 1) * self.pseudo_per_batch] + self.labelled
            yield [*own.tolist(), *drawn.tolist()]
