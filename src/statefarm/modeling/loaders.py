"""Batches from the image cache: a torch ``Dataset`` over memory-mapped rows.

Images stay uint8 from disk to the device (a quarter of the bytes of float32 through
the loader and the pinned buffers); ``DeviceBatches`` scales and normalizes them there.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import albumentations as A
import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler


class CachedImageDataset(Dataset):
    """Rows of the image cache with their targets, augmented on the fly.

    Args:
        images: The cache's ``(N, H, W, 3)`` uint8 array (a memory map: workers
            reopen it by file name instead of copying it).
        rows: Cache row of each item.
        targets: Class index per item, or a ``(len(rows), classes)`` probability
            array for soft labels.
        transform: Albumentations transform, or ``None``.
    """

    def __init__(
        self, images: np.ndarray, rows: Sequence[int], targets: np.ndarray, transform: A.Compose | None = None
    ) -> None:
        if len(rows) != len(targets):
            raise ValueError(f"{len(rows)} rows but {len(targets)} targets")
        self.images = images
        self.filename = getattr(images, "filename", None)
        self.rows = np.asarray(rows, dtype=np.int64)
        self.targets = torch.as_tensor(np.array(targets))  # a private, writable copy
        self.transform = transform

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """A whole batch in one read of the memory map (the DataLoader calls this when it exists)."""
        images = self.images[self.rows[indices]]  # fancy indexing copies the rows out of the map
        if self.transform is not None:
            images = [self.transform(image=image)["image"] for image in images]
        return [
            (torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1), self.targets[index])
            for image, index in zip(images, indices, strict=True)
        ]

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        if self.filename is not None:
            state["images"] = None  # reopened from the file in the worker
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if self.images is None:
            self.images = np.load(self.filename, mmap_mode="r")


def _init_worker(worker_id: int) -> None:
    cv2.setNumThreads(0)  # one OpenCV thread per loader worker, not one per core
    info = torch.utils.data.get_worker_info()
    transform = getattr(info.dataset, "transform", None) if info is not None else None
    if transform is not None:
        # Each worker draws its own augmentations, reproducibly.
        transform.set_random_seed(info.seed % 2**32)


def make_loader(
    dataset: CachedImageDataset,
    batch_size: int,
    shuffle: bool,
    num_workers: int,
    device: torch.device,
    seed: int,
    batch_sampler: Sampler[list[int]] | None = None,
    sampler: Sampler[int] | None = None,
) -> DataLoader:
    """A ``DataLoader`` with pinned memory on CUDA and seeded shuffling.

    With ``batch_sampler`` (e.g. ``MixedBatchSampler``) it decides the batches instead
    of ``batch_size`` and ``shuffle``; with ``sampler`` (e.g. ``DistributedSampler``, this
    process's share) it decides the order instead of ``shuffle``.

    Workers are not persistent: each epoch starts them afresh from the loader's
    generator, which ``seed_epoch`` resets, so epoch ``k`` draws the same batches
    and augmentations whether the run was resumed or not.
    """
    if batch_sampler is not None:
        batching = {"batch_sampler": batch_sampler}
    elif sampler is not None:
        batching = {"batch_size": batch_size, "sampler": sampler}
    else:
        batching = {"batch_size": batch_size, "shuffle": shuffle}
    return DataLoader(
        dataset,
        **batching,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        worker_init_fn=_init_worker,
        generator=torch.Generator().manual_seed(seed),
    )


def seed_epoch(loader: DataLoader, seed: int, epoch: int) -> None:
    """Make epoch ``epoch``'s shuffling and augmentation depend only on ``seed`` and ``epoch``."""
    loader.generator.manual_seed(seed * 1_000_003 + epoch)
    for sampler in (loader.batch_sampler, loader.sampler):  # MixedBatchSampler, DistributedSampler
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
    transform = getattr(loader.dataset, "transform", None)
    if loader.num_workers == 0 and transform is not None:
        transform.set_random_seed(seed * 1_000_003 + epoch)


class DeviceBatches:
    """A loader's ``(images, targets)`` as normalized inputs and targets on ``device``.

    The mean and std are put on the device once, not per batch. On CUDA the next batch is
    copied (from pinned memory) and normalized on a side stream while the model works on
    the current one, as timm's ``PrefetchLoader`` does, so the copy costs no step time.
    Batches already on the device (synthetic ones, in a benchmark) pass through the same way.
    """

    def __init__(
        self, loader: Iterable, mean: Sequence[float], std: Sequence[float], device: torch.device, channels_last: bool
    ) -> None:
        self.loader, self.device, self.channels_last = loader, device, channels_last
        self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1) * 255
        self.std = torch.tensor(std, device=device).view(1, -1, 1, 1) * 255

    def __len__(self) -> int:
        return len(self.loader)

    def _to_device(self, images: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        images = images.to(self.device, non_blocking=True)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return (images.float() - self.mean) / self.std, targets.to(self.device, non_blocking=True)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.device.type != "cuda":
            yield from (self._to_device(images, targets) for images, targets in self.loader)
            return
        side, main = torch.cuda.Stream(self.device), torch.cuda.current_stream(self.device)
        ready = None
        for images, targets in self.loader:
            with torch.cuda.stream(side):
                coming = self._to_device(images, targets)
            if ready is not None:
                yield ready
            main.wait_stream(side)
            for tensor in coming:
                tensor.record_stream(main)  # made on the side stream, used and freed on the main one
            ready = coming
        if ready is not None:
            yield ready
