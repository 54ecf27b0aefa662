"""Nodes of ``submission``: Kaggle's CSV from the test predictions."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from statefarm import submission as submissions
from statefarm.layout import CLASS_NAMES


def make_submission(
    test_predictions: pd.DataFrame,
    sample_submission: pd.DataFrame,
    image_index: pd.DataFrame,
    submission: dict[str, Any],
) -> pd.DataFrame:
    """One validated row per test image, clipped; unreadable test images get the training class prior."""
    train = image_index[(image_index["split"] == "train") & image_index["valid"]]
    prior = np.bincount(train["label"], minlength=len(CLASS_NAMES)) / max(len(train), 1)
    return submissions.build_submission(test_predictions, sample_submission, prior, clip=submission["clip"])
