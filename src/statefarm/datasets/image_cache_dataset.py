"""``ImageCacheDataset``: the decoded images as one memory-mapped array on disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset

from statefarm.data.cache import (
    ImageCache,
    ImageCachePlan,
    open_image_cache,
    read_manifest,
    write_image_cache,
)


class ImageCacheDataset(AbstractDataset[ImageCachePlan, ImageCache]):
    """Saves an ``ImageCachePlan`` by decoding it into a cache folder; loads an ``ImageCache``.

    Like a lazy dataframe, the node returns what to compute and the dataset
    materializes it: tens of gigabytes of pixels stream straight to disk from
    the decoding processes and never pass through the node. Saving a plan whose
    fingerprint matches the cache on disk reuses that cache instead of decoding
    again. A build goes to a staging folder and replaces the old cache only when
    complete.

    Example catalog entry::

        image_cache:
          type: statefarm.datasets.ImageCacheDataset
          path: data/02_intermediate/state-farm-distracted-driver-detection/image_cache
    """

    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> ImageCache:
        return open_image_cache(self._path)

    def save(self, data: ImageCachePlan) -> None:
        write_image_cache(data, self._path)

    def _exists(self) -> bool:
        return read_manifest(self._path) is not None

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}
