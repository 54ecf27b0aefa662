"""Nodes of ``submission``: Kaggle's CSV from the test predictions."""

from __future__ import annotations

import hashlib
import logging
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from statefarm.data import competition
from statefarm.data import submission as submissions
from statefarm.data.layout import CLASS_NAMES

logger = logging.getLogger(__name__)


def make_submission(
    test_predictions: pd.DataFrame,
    sample_submission: pd.DataFrame,
    image_index: pd.DataFrame,
    submission: submissions.SubmissionConfig,
) -> pd.DataFrame:
    """One validated row per test image, clipped; unreadable test images get the training class prior."""
    train = image_index[(image_index["split"] == "train") & image_index["valid"]]
    prior = np.bincount(train["label"], minlength=len(CLASS_NAMES)) / max(len(train), 1)
    unreadable = set(image_index.loc[(image_index["split"] == "test") & ~image_index["valid"], "img"])
    return submissions.build_submission(
        test_predictions, sample_submission, prior, clip=submission.clip, unreadable=unreadable
    )


def submit_to_kaggle(submission: pd.DataFrame, submission_params: submissions.SubmissionConfig, namespace: str) -> dict:
    """Upload the submission when ``submission.submit`` is true (off by default: it uses a daily slot).

    Returns a receipt (the file's hash, the message, the time, whether it was uploaded).
    A resume (``--only-missing-outputs``) finds the receipt and does not upload again;
    a failed upload writes none, so the next resume tries again.
    """
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{namespace}_submission.csv"
        submission.to_csv(path, index=False, float_format="%.8g")
        receipt = {
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "uploaded": submission_params.submit,
        }
        if not receipt["uploaded"]:
            logger.info("Not submitting to Kaggle (submission.submit is false)")
            return receipt | {"why": "submission.submit is false"}
        message = f"statefarm {namespace}: {submission_params.message}"
        competition.submit_to_competition(path, message)
    return receipt | {"message": message}
