"""``ImageFolderDataset``: the listing of Kaggle's ``imgs/`` folder, one row per file."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
from kedro.io import AbstractDataset, DatasetError

from statefarm.data.layout import FILE_LISTING_COLUMNS


class ImageFolderDataset(AbstractDataset[None, pd.DataFrame]):
    """Lists every file under an image folder without reading the images.

    Loading gives ``relpath`` (relative, ``/``-separated: ``train/c0/img_1.jpg``),
    ``path`` (as the folder is configured plus ``relpath``), ``file_size`` and
    ``mtime_ns``; the pipeline decides what each file is. Read-only: the images
    come from Kaggle (or the demo generator), never from a node.

    Example catalog entry::

        raw_images:
          type: statefarm.datasets.ImageFolderDataset
          path: data/01_raw/state-farm-distracted-driver-detection/imgs
    """

    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> pd.DataFrame:
        if not self._path.is_dir():
            raise DatasetError(
                f"image folder {self._path} does not exist: download the competition "
                "(make download) or generate the demo data (kedro run --env=demo --pipelines=demo_data)"
            )
        rows = []
        for root, dirs, files in os.walk(self._path):
            dirs.sort()
            for name in sorted(files):
                full = os.path.join(root, name)
                stat = os.stat(full)
                relpath = PurePosixPath(Path(full).relative_to(self._path)).as_posix()
                rows.append((relpath, full, stat.st_size, stat.st_mtime_ns))
        if not rows:
            raise DatasetError(f"image folder {self._path} is empty: expected train/c0..c9/*.jpg and test/*.jpg")
        return pd.DataFrame(rows, columns=list(FILE_LISTING_COLUMNS))

    def save(self, data: None) -> None:
        raise DatasetError(f"{self.__class__.__name__} is read-only")

    def _exists(self) -> bool:
        return self._path.is_dir()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}
