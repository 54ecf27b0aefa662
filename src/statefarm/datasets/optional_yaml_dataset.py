"""``OptionalYAMLDataset``: a YAML file that may not exist yet, read as ``None`` until it does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from kedro.io import AbstractDataset

from statefarm.runtime.atomic import write_atomic


class OptionalYAMLDataset(AbstractDataset[Any, Any]):
    """A person-readable YAML document, written atomically; loads ``None`` when absent.

    For a result that a later stage uses when an earlier, optional stage has made it
    (the tuned augmentations), and otherwise falls back to its parameters.

    Example catalog entry::

        tuned_augmentations:
          type: statefarm.datasets.OptionalYAMLDataset
          filepath: data/05_model_input/demo/tuned_augmentations.yml
    """

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = Path(filepath)
        self.metadata = metadata

    def load(self) -> Any:
        if not self._filepath.is_file():
            return None
        return yaml.safe_load(self._filepath.read_text())

    def save(self, data: Any) -> None:
        write_atomic(self._filepath, lambda partial: partial.write_text(yaml.safe_dump(data, sort_keys=False)))

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
