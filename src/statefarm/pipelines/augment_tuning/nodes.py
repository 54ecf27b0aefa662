"""Nodes of ``augment_tuning``: scan each transform on the sample, combine the winners."""

from __future__ import annotations

from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from statefarm import augment_tuning, reports
from statefarm.cache import ImageCache
from statefarm.config import parse_params


def tune_augmentations(
    image_cache: ImageCache, sample: pd.DataFrame, params: dict[str, Any], seed: int, submission: dict[str, Any]
) -> tuple[pd.DataFrame, dict[str, Any], dict[str, Any]]:
    """The scan table, the tuned spec (with the scores behind it) and the headline scores as metrics."""
    config = parse_params(augment_tuning.TuningConfig, params, "augment_tuning")
    scan, tuned = augment_tuning.scan_augmentations(image_cache, sample, config, seed, clip=submission["clip"])
    metrics = {
        name: {"value": tuned[name], "step": 0}
        for name in ("baseline_valid_loss", "combined_valid_loss")
        if name in tuned
    }
    return scan, tuned, metrics


def plot_augment_scan(scan: pd.DataFrame) -> Figure:
    return reports.augment_scan_figure(scan)
