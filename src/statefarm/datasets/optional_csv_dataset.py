"""``OptionalCSVDataset``: a CSV file that may be absent, read as ``None``; an empty table writes none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from kedro.io import AbstractDataset

from statefarm.runtime.atomic import write_atomic


class OptionalCSVDataset(AbstractDataset[pd.DataFrame, pd.DataFrame | None]):
    """A table that exists only when a user asks for it (``to_predict.csv``), and the answer to it.

    Loads ``None`` when the file is absent. Saving an empty table (nothing was asked)
    removes the file, so no answer outlives its request (Kedro cannot save ``None``).
    Written to a temporary file and renamed, so a failed write never leaves half a file.

    Example catalog entry::

        movielens_to_predict:
          type: statefarm.datasets.OptionalCSVDataset
          filepath: data/01_raw/ml-latest-small/to_predict.csv
    """

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = Path(filepath)
        self.metadata = metadata

    def load(self) -> pd.DataFrame | None:
        return pd.read_csv(self._filepath) if self._filepath.is_file() else None

    def save(self, data: pd.DataFrame) -> None:
        if data.empty:
            self._filepath.unlink(missing_ok=True)
            return
        write_atomic(self._filepath, lambda partial: data.to_csv(partial, index=False))

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
