"""Datasets for model checkpoints: the trained model, and the folder a run checkpoints into."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io import AbstractDataset, AbstractVersionedDataset, Version

from statefarm.modeling.checkpoints import CheckpointStore, load_checkpoint, save_atomic


class TorchCheckpointDataset(AbstractVersionedDataset[dict, dict]):
    """A checkpoint dict (weights, how to rebuild the model, its data config) in one ``.pt`` file.

    Written to a temporary file and renamed, so a failed save never replaces a good model.

    Example catalog entry::

        baseline.model:
          type: statefarm.datasets.TorchCheckpointDataset
          filepath: data/06_models/demo/baseline/model.pt
    """

    def __init__(self, filepath: str, version: Version | None = None, metadata: dict[str, Any] | None = None):
        super().__init__(PurePosixPath(filepath), version)
        self.metadata = metadata

    def load(self) -> dict:
        return load_checkpoint(Path(self._get_load_path()))

    def save(self, data: dict) -> None:
        save_atomic(data, Path(self._get_save_path()))

    def _exists(self) -> bool:
        return Path(self._get_load_path()).is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "version": self._version}


class CheckpointStoreDataset(AbstractDataset[None, CheckpointStore]):
    """The folder where a training run writes ``last.pt`` every epoch and ``best.pt``.

    Loading gives a ``CheckpointStore`` on that folder, so the training node can
    checkpoint as it goes (and resume) without knowing any path.

    Example catalog entry::

        baseline.checkpoints:
          type: statefarm.datasets.CheckpointStoreDataset
          path: data/06_models/demo/baseline/checkpoints
    """

    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> CheckpointStore:
        return CheckpointStore(self._path)

    def save(self, data: None) -> None:
        raise NotImplementedError("CheckpointStoreDataset is written by the training loop, not saved to")

    def _exists(self) -> bool:
        return True  # a folder that does not exist yet is an empty store

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}
