"""Nodes of ``inference``: calibrate on the validation drivers, predict every test image."""

from __future__ import annotations

from typing import Any

import pandas as pd

from statefarm import inference
from statefarm.cache import ImageCache
from statefarm.config import parse_params
from statefarm.layout import CLASS_NAMES
from statefarm.metrics import as_metric_history


def calibrate(valid_predictions: pd.DataFrame, inference_params: dict[str, Any]) -> dict:
    """Fit a temperature on the validation drivers' logits (or keep 1 when calibration is off)."""
    logits = valid_predictions.loc[:, [f"logit_{name}" for name in CLASS_NAMES]].to_numpy()
    if inference_params.get("calibrate", True):
        return inference.fit_temperature(logits, valid_predictions["label"].to_numpy())
    return {"temperature": 1.0}


def track_calibration(calibration: dict) -> dict:
    """The temperature and the validation log loss before and after it, as MLflow metrics."""
    return as_metric_history(calibration)


def predict_test_images(
    model: dict,
    image_cache: ImageCache,
    image_index: pd.DataFrame,
    calibration: dict,
    inference_params: dict[str, Any],
    seed: int,
) -> pd.DataFrame:
    """Probabilities of every readable test image; unreadable ones are left to the submission."""
    config = parse_params(
        inference.InferenceConfig, {k: v for k, v in inference_params.items() if k != "calibrate"}, "inference"
    )
    test = image_index[(image_index["split"] == "test") & image_index["valid"]]
    names = test["img"].tolist()
    probabilities = inference.predict_probabilities(
        model, image_cache, names, config, temperature=calibration["temperature"], seed=seed
    )
    predictions = pd.DataFrame(probabilities, columns=list(CLASS_NAMES))
    predictions.insert(0, "img", names)
    return predictions
