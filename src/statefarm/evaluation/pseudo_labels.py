"""Pseudo-labels: the baseline's test predictions turned into training targets.

The unlabelled test drivers are most of the competition's images. Training on the
baseline's own predictions for them (a fixed share of every batch, see
``MixedBatchSampler``) teaches the model what those drivers look like. Validation
stays on held-out labelled drivers: a test image is never scored, and the model that
labels the test images never saw the validation drivers.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from statefarm.config import Params
from statefarm.data.layout import CLASS_NAMES, readable_test_images

logger = logging.getLogger(__name__)


class PseudoLabelConfig(Params):
    """How test predictions become targets, and how they enter training."""

    mode: Literal["soft", "hard"] = Field("soft", description="probability vectors, or one-hot argmax")
    temperature: float = Field(1.0, gt=0, description="soft labels are sharpened by p^(1/T); below 1 sharpens")
    threshold: float = Field(0.0, ge=0, lt=1, description="keep images whose top probability reaches this")
    fraction: float = Field(0.25, gt=0, lt=1, description="share of every batch that is pseudo-labelled")
    labelled_share: float = Field(
        1.0, gt=0, le=1, description="share of the labelled images an epoch passes over, a fresh draw each epoch"
    )
    init: Literal["scratch", "baseline"] = Field("baseline", description="train from scratch or fine-tune the baseline")
    smooth: bool = Field(
        True, description="label from the neighbour-smoothed predictions, smoothing chosen without the fold's labels"
    )


class PseudoLabelLeakError(ValueError):
    """Pseudo-labels would put validation or training images where they do not belong."""


def make_pseudo_labels(test_predictions: pd.DataFrame, config: PseudoLabelConfig) -> pd.DataFrame:
    """Targets (``img`` and a probability per class) for the test images the baseline is confident about.

    Args:
        test_predictions: ``img`` and a probability per class (``c0``..``c9``).
        config: Soft or hard, sharpening and threshold.
    """
    probabilities = test_predictions.loc[:, list(CLASS_NAMES)].to_numpy(np.float64, copy=True)
    keep = probabilities.max(axis=1) >= config.threshold
    if not keep.any():
        raise ValueError(
            f"pseudo_label.threshold {config.threshold} keeps none of {len(test_predictions)} test images; lower it"
        )
    probabilities = probabilities[keep]
    if config.mode == "hard":
        targets = np.eye(len(CLASS_NAMES))[probabilities.argmax(axis=1)]
    else:
        sharpened = probabilities ** (1 / config.temperature)
        targets = sharpened / sharpened.sum(axis=1, keepdims=True)
    pseudo_labels = pd.DataFrame(targets.astype(np.float32), columns=list(CLASS_NAMES))
    pseudo_labels.insert(0, "img", test_predictions["img"].to_numpy()[keep])
    return pseudo_labels


def pseudo_label_sources(models: list[str], train_drivers: list[str]) -> dict:
    """Where pseudo-labels come from: the models that made them and every labelled driver those models saw."""
    return {"models": list(models), "train_drivers": sorted(set(train_drivers))}


def check_pseudo_label_sources(sources: dict, driver_split: dict) -> None:
    """Pseudo-labels for a split must come from models that never saw its validation drivers.

    A model that saw a validation driver writes what it learned about that driver
    into its predictions of the test images; training on them and validating on that
    driver scores the model on what it was shown.

    Raises:
        PseudoLabelLeakError: Naming the models and the validation drivers they saw.
    """
    seen = sorted(set(sources["train_drivers"]) & set(driver_split["valid_drivers"]))
    if seen:
        raise PseudoLabelLeakError(
            f"pseudo-labels from {sources['models']} were made by models trained on validation driver(s) {seen} "
            f"of fold {driver_split.get('fold', '?')}; each fold's pseudo-labels must come from models that "
            "never saw its validation drivers (its own baseline fold)"
        )


def summarize_pseudo_labels(pseudo_labels: pd.DataFrame, test_images: int) -> dict[str, float]:
    """The share of test images kept and the class distribution of the targets."""
    share = pseudo_labels.loc[:, list(CLASS_NAMES)].to_numpy(np.float64).mean(axis=0)
    summary = {"kept_fraction": len(pseudo_labels) / max(test_images, 1), "kept_images": float(len(pseudo_labels))}
    summary |= {f"class_share_{name}": float(share[k]) for k, name in enumerate(CLASS_NAMES)}
    logger.info(
        "Pseudo-labels: %d of %d test images kept (%.1f%%); class shares %s",
        len(pseudo_labels), test_images, 100 * summary["kept_fraction"], np.round(share, 3).tolist(),
    )  # fmt: skip
    return summary


def check_pseudo_labels(pseudo_labels: pd.DataFrame, image_index: pd.DataFrame, driver_split: dict) -> None:
    """Pseudo-labels must be readable test images only: never a labelled (train or validation) image.

    Raises:
        PseudoLabelLeakError: Naming the offending images.
    """
    outside = sorted(set(pseudo_labels["img"]) - set(readable_test_images(image_index)))
    if outside:
        labelled = set(image_index.loc[image_index["split"] == "train", "img"])
        kind = "labelled (train or validation) images" if set(outside) & labelled else "not readable test images"
        raise PseudoLabelLeakError(f"{len(outside)} pseudo-labelled image(s) are {kind}: {outside[:5]}")
    if pseudo_labels["img"].duplicated().any():
        raise PseudoLabelLeakError("pseudo-labels name an image more than once")
