"""The image cache: every image decoded once, resized, stored as one memory-mapped array.

A cache is a folder::

    images.npy      uint8 (N, height, width, 3), row i is image ids[i]
    decoded.npy     bool (N,), False where the image could not be decoded (row is zeros)
    manifest.json   format version, fingerprint, image size, the image ids and, for each
                    image that could not be decoded, the decoder's reason

Every later stage reads rows of ``images.npy`` through ``numpy``'s memory map, so
the page cache, not each process, holds the pixels.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from statefarm.data.images import decode_resized
from statefarm.runtime import parallel

logger = logging.getLogger(__name__)

CACHE_FORMAT_VERSION = 1
IMAGES_FILE = "images.npy"
DECODED_FILE = "decoded.npy"
MANIFEST_FILE = "manifest.json"


@dataclass(frozen=True)
class ImageCachePlan:
    """What to decode into a cache; made by a node, carried out by ``write_image_cache``.

    Attributes:
        ids: Image names, one per row.
        paths: Their files.
        decode: Per row, whether to decode it (False leaves a zero row, e.g. a
            test image already known to be broken).
        image_size: ``(height, width)`` of every row.
        fingerprint: Identifies the inputs and settings; an existing cache with the
            same fingerprint is reused as it is.
        num_workers: Decoding processes; ``None`` for every core.
    """

    ids: tuple[str, ...]
    paths: tuple[str, ...]
    decode: tuple[bool, ...]
    image_size: tuple[int, int]
    fingerprint: str
    num_workers: int | None = None


def plan_image_cache(
    ids: Sequence[str],
    paths: Sequence[str],
    file_sizes: Sequence[int],
    mtimes_ns: Sequence[int],
    decode: Sequence[bool],
    image_size: tuple[int, int],
    num_workers: int | None = None,
) -> ImageCachePlan:
    """Describe a cache of ``ids`` at ``image_size``, fingerprinted by the files' size and mtime.

    Like ``make``, a file that changed on disk changes its size or modification
    time, and with it the fingerprint, so the cache is rebuilt.
    """
    if len({len(ids), len(paths), len(file_sizes), len(mtimes_ns), len(decode)}) != 1:
        raise ValueError("ids, paths, file_sizes, mtimes_ns and decode must have the same length")
    height, width = image_size
    if height < 1 or width < 1:
        raise ValueError(f"image_size must be two positive integers (height, width), got {image_size}")
    digest = hashlib.sha256(f"v{CACHE_FORMAT_VERSION}:{height}x{width}".encode())
    for row in zip(ids, paths, file_sizes, mtimes_ns, decode, strict=True):
        digest.update(("\0".join(map(str, row)) + "\n").encode())
    return ImageCachePlan(
        ids=tuple(map(str, ids)),
        paths=tuple(map(str, paths)),
        decode=tuple(map(bool, decode)),
        image_size=(int(height), int(width)),
        fingerprint=digest.hexdigest(),
        num_workers=num_workers,
    )


@dataclass(frozen=True)
class ImageCache:
    """A cache opened for reading: ``images[row]`` is the ``(h, w, 3)`` uint8 image ``ids[row]``."""

    images: np.ndarray
    decoded: np.ndarray
    ids: tuple[str, ...]
    image_size: tuple[int, int]
    fingerprint: str
    failures: dict[str, str] = field(default_factory=dict)  # image -> why it could not be decoded

    def __len__(self) -> int:
        return len(self.ids)

    def __reduce_ex__(self, protocol: int):
        """A memory-mapped cache travels to another process (a data-parallel worker) as its folder, not its pixels."""
        filename = getattr(self.images, "filename", None)
        if filename is None:
            return super().__reduce_ex__(protocol)
        return open_image_cache, (Path(filename).parent,)

    @cached_property
    def rows(self) -> dict[str, int]:
        """Row of each image name."""
        return {name: row for row, name in enumerate(self.ids)}

    def rows_of(self, names: Sequence[str]) -> np.ndarray:
        """Rows of ``names``, raising ``KeyError`` naming the first image not in the cache."""
        rows = self.rows
        try:
            return np.fromiter((rows[name] for name in names), dtype=np.int64, count=len(names))
        except KeyError as error:
            raise KeyError(f"image {error.args[0]!r} is not in the image cache") from None


def read_manifest(directory: Path) -> dict | None:
    """The cache's manifest, or ``None`` if there is no complete cache in ``directory``."""
    manifest = directory / MANIFEST_FILE
    if not manifest.is_file() or not (directory / IMAGES_FILE).is_file():
        return None
    return json.loads(manifest.read_text())


def open_image_cache(directory: Path) -> ImageCache:
    """Open the cache in ``directory`` read-only, memory-mapping the pixels."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    if manifest is None:
        raise FileNotFoundError(f"no image cache in {directory}: run the data_prep pipeline first")
    if manifest["format_version"] != CACHE_FORMAT_VERSION:
        raise ValueError(
            f"image cache in {directory} has format {manifest['format_version']}, this version "
            f"reads {CACHE_FORMAT_VERSION}: rebuild it with the data_prep pipeline"
        )
    return ImageCache(
        images=np.load(directory / IMAGES_FILE, mmap_mode="r"),
        decoded=np.load(directory / DECODED_FILE),
        ids=tuple(manifest["ids"]),
        image_size=tuple(manifest["image_size"]),
        fingerprint=manifest["fingerprint"],
        failures=manifest.get("failures", {}),
    )


class StaleImageCacheError(ValueError):
    """The image cache was built from other files or settings than the image index in use."""


def check_cache_matches_index(image_cache: ImageCache, image_index: pd.DataFrame) -> None:
    """The cache must be the one ``image_index`` was made with (an interrupted ``data_prep`` can split them).

    Raises:
        StaleImageCacheError: Saying which stage to rerun.
    """
    made_with = set(image_index["cache_fingerprint"].unique()) if "cache_fingerprint" in image_index else set()
    if made_with != {image_cache.fingerprint}:
        raise StaleImageCacheError(
            f"the image cache (fingerprint {image_cache.fingerprint[:12]}) is not the one the image index was "
            f"made with ({', '.join(sorted(f[:12] for f in made_with)) or 'none recorded'}): an interrupted or "
            "older data_prep left them apart; rerun `kedro run --pipelines=data_prep` (add --env as before)"
        )


def _decode_rows(task: tuple[str, tuple[int, int], list[tuple[int, str]]]) -> list[tuple[int, str]]:
    """Worker: decode ``(row, path)`` pairs straight into the memory-mapped array."""
    images_path, image_size, rows = task
    images = np.load(images_path, mmap_mode="r+")
    failures = []
    for row, path in rows:
        try:
            images[row] = decode_resized(path, image_size)
        except (OSError, ValueError, SyntaxError) as error:
            failures.append((row, f"{error.__class__.__name__}: {error}"))
    images.flush()
    return failures


def _chunks(items: list, count: int) -> list[list]:
    size = max(1, -(-len(items) // count))
    return [items[start : start + size] for start in range(0, len(items), size)]


def write_image_cache(plan: ImageCachePlan, directory: Path) -> bool:
    """Build the cache that ``plan`` describes in ``directory``, unless it is already there.

    The new cache is written beside the old one and swapped in only when complete,
    so an interrupted build never leaves a half-written cache in place of a good one.

    Args:
        plan: What to decode.
        directory: The cache folder.

    Returns:
        True if a cache was built, False if the existing one was reused.
    """
    directory = Path(directory)
    _remove_stale_builds(directory)
    existing = read_manifest(directory)
    if existing is not None and existing.get("fingerprint") == plan.fingerprint:
        logger.info("Reusing the image cache in %s (%d images)", directory, len(plan.ids))
        return False

    started = time.perf_counter()
    staging = directory.with_name(f".{directory.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    height, width = plan.image_size
    images = np.lib.format.open_memmap(
        staging / IMAGES_FILE, mode="w+", dtype=np.uint8, shape=(len(plan.ids), height, width, 3)
    )
    del images  # workers reopen the file; the header and zeroed rows are on disk

    todo = [(row, path) for row, (path, wanted) in enumerate(zip(plan.paths, plan.decode, strict=True)) if wanted]
    workers = parallel.resolve_num_workers(plan.num_workers)
    if len(todo) < parallel.MIN_ITEMS_FOR_PROCESSES:
        workers = 1
    tasks = [(str(staging / IMAGES_FILE), plan.image_size, chunk) for chunk in _chunks(todo, workers * 8)]
    results = parallel.parallel_map(_decode_rows, tasks, workers, min_items=1)
    failures = [failure for result in results for failure in result]

    decoded = np.array(plan.decode, dtype=bool)
    for row, message in failures:
        decoded[row] = False
        logger.warning("Could not decode %s (%s): %s", plan.ids[row], plan.paths[row], message)
    np.save(staging / DECODED_FILE, decoded)
    manifest = {
        "format_version": CACHE_FORMAT_VERSION,
        "fingerprint": plan.fingerprint,
        "image_size": list(plan.image_size),
        "ids": list(plan.ids),
        "failures": {plan.ids[row]: message for row, message in failures},
    }
    (staging / MANIFEST_FILE).write_text(json.dumps(manifest))
    _swap_in(staging, directory)
    seconds = time.perf_counter() - started
    logger.info(
        "Cached %d images at %dx%d in %.1fs (%.0f images/s, %d workers) to %s",
        len(todo), height, width, seconds, len(todo) / max(seconds, 1e-9), workers, directory,
    )  # fmt: skip
    return True


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_builds(directory: Path) -> None:
    """Remove the staging and retired folders of builds whose process is gone (killed mid-build)."""
    for stale in directory.parent.glob(f".{directory.name}.*-*"):
        kind, _, pid = stale.name.rpartition("-")
        if not kind.endswith((".partial", ".retired")) or not pid.isdigit() or _process_alive(int(pid)):
            continue
        logger.warning("Removing %s, left by an interrupted image cache build (process %s)", stale, pid)
        shutil.rmtree(stale, ignore_errors=True)


def _swap_in(staging: Path, directory: Path) -> None:
    """Replace ``directory`` by ``staging``; the old cache is removed only after the rename."""
    retired = directory.with_name(f".{directory.name}.retired-{os.getpid()}")
    if directory.exists():
        directory.rename(retired)
    staging.rename(directory)
    shutil.rmtree(retired, ignore_errors=True)
