"""Kaggle's submission file: ``img,c0..c9``, one row per test image, clipped probabilities."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from pydantic import Field

from statefarm.config import Params
from statefarm.data.layout import CLASS_NAMES, SUBMISSION_COLUMNS
from statefarm.evaluation.metrics import clip_probabilities

logger = logging.getLogger(__name__)

_SHOWN = 5


class SubmissionConfig(Params):
    """How the submission file is written, and whether it is uploaded."""

    clip: float = Field(0.001, ge=0, lt=0.1, description="probabilities are kept in [clip, 1 - clip]")
    submit: bool = Field(False, description="upload to Kaggle (one of the daily submissions)")
    message: str = ""


class SubmissionError(ValueError):
    """A submission that Kaggle would reject or score wrongly."""


def _some(values) -> str:
    values = list(values)
    more = f" and {len(values) - _SHOWN} more" if len(values) > _SHOWN else ""
    return ", ".join(map(repr, values[:_SHOWN])) + more


def validate_submission(submission: pd.DataFrame, expected_images: pd.Series | None = None) -> None:
    """Check the header, one row per image, no NaN, probabilities that sum to 1.

    Args:
        submission: The frame about to be written.
        expected_images: Every test image (``sample_submission.csv``'s ``img``), when known.

    Raises:
        SubmissionError: Naming the rows at fault.
    """
    if tuple(submission.columns) != SUBMISSION_COLUMNS:
        raise SubmissionError(
            f"header must be {','.join(SUBMISSION_COLUMNS)}, got {','.join(map(str, submission.columns))}"
        )
    duplicated = submission["img"][submission["img"].duplicated()]
    if not duplicated.empty:
        raise SubmissionError(f"{len(duplicated)} image(s) appear more than once: {_some(duplicated)}")
    if expected_images is not None:
        missing = sorted(set(expected_images) - set(submission["img"]))
        extra = sorted(set(submission["img"]) - set(expected_images))
        if missing:
            raise SubmissionError(f"{len(missing)} test image(s) have no row: {_some(missing)}")
        if extra:
            raise SubmissionError(f"{len(extra)} row(s) are not test images: {_some(extra)}")
    probabilities = submission.loc[:, list(CLASS_NAMES)].to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.isnan(probabilities).any(axis=1)
    if bad.any():
        raise SubmissionError(f"{int(bad.sum())} row(s) have NaN probabilities: {_some(submission['img'][bad])}")
    bad = (probabilities < 0).any(axis=1) | (probabilities > 1).any(axis=1)
    bad |= ~np.isclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    if bad.any():
        raise SubmissionError(
            f"{int(bad.sum())} row(s) are not probabilities summing to 1: {_some(submission['img'][bad])}"
        )


def build_submission(
    test_predictions: pd.DataFrame,
    sample_submission: pd.DataFrame,
    class_prior: np.ndarray,
    clip: float,
    unreadable: set[str] | frozenset[str] = frozenset(),
) -> pd.DataFrame:
    """One row per image of ``sample_submission.csv``, in its order, each probability in ``[clip, 1 - clip]``.

    The ``unreadable`` test images (those ``rejected_images`` lists) get the class prior,
    with a warning. Every other image must have a prediction of finite, non-negative
    probabilities: anything else is a bug upstream, and no file is written.

    Raises:
        SubmissionError: Naming the images without a usable prediction.
    """
    if not 0 <= clip < 0.1:
        raise ValueError(f"submission.clip must be in [0, 0.1), got {clip}")
    rows = sample_submission[["img"]].merge(test_predictions, on="img", how="left", validate="one_to_one")
    probabilities = rows.loc[:, list(CLASS_NAMES)].to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
    prior = rows["img"].isin(unreadable).to_numpy()
    unusable = ~prior & ~(np.isfinite(probabilities) & (probabilities >= 0)).all(axis=1)
    unusable |= ~prior & ~(probabilities.sum(axis=1) > 0)
    if unusable.any():
        raise SubmissionError(
            f"{int(unusable.sum())} readable test image(s) have no prediction, or a NaN, infinite or negative "
            f"one: {_some(rows['img'][unusable])}; the model or the predictions are broken, no submission written"
        )
    if prior.any():
        logger.warning(
            "%d test image(s) are unreadable (see rejected_images); they get the class prior: %s",
            int(prior.sum()), _some(rows["img"][prior]),
        )  # fmt: skip
        probabilities[prior] = class_prior
    submission = pd.DataFrame(clip_probabilities(probabilities, clip), columns=list(CLASS_NAMES))
    submission.insert(0, "img", rows["img"].to_numpy())
    validate_submission(submission, sample_submission["img"])
    return submission
