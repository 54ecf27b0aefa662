"""``SubmissionDataset``: Kaggle submission CSVs, validated, timestamped, written atomically."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
from kedro.io import AbstractVersionedDataset, Version

from statefarm.data.submission import validate_submission
from statefarm.runtime.atomic import write_atomic


class SubmissionDataset(AbstractVersionedDataset[pd.DataFrame, pd.DataFrame]):
    """A submission CSV. Saving validates it, then writes a temporary file and renames it.

    Always versioned: every save is a new timestamped file
    (``<filepath>/<timestamp>/<name>.csv``, Kedro's layout) and never replaces an
    earlier submission; loading reads the newest.

    Example catalog entry::

        baseline.submission:
          type: statefarm.datasets.SubmissionDataset
          filepath: data/09_submissions/demo/baseline.csv
    """

    def __init__(self, filepath: str, version: Version | None = None, metadata: dict[str, Any] | None = None):
        super().__init__(PurePosixPath(filepath), version or Version(None, None))
        self.metadata = metadata

    def load(self) -> pd.DataFrame:
        return pd.read_csv(self._get_load_path())

    def save(self, data: pd.DataFrame) -> None:
        validate_submission(data)
        write_atomic(
            Path(self._get_save_path()), lambda partial: data.to_csv(partial, index=False, float_format="%.8g")
        )

    def latest_path(self) -> Path:
        """The newest saved submission file (the one this run wrote, once it has saved)."""
        return Path(self._get_load_path())

    def _exists(self) -> bool:
        try:
            return Path(self._get_load_path()).is_file()
        except Exception:  # no version saved yet
            return False

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "version": self._version}
