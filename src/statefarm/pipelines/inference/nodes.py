"""Nodes of ``inference``: one fold model's predictions of every readable test image."""

from __future__ import annotations

from typing import Any

import pandas as pd

from statefarm import inference
from statefarm.cache import ImageCache, check_cache_matches_index
from statefarm.config import parse_params
from statefarm.cross_validation import LOGITS, log_probabilities
from statefarm.neighbours import find_neighbours


def predict_test_images(
    model: dict, image_cache: ImageCache, image_index: pd.DataFrame, inference_params: dict[str, Any], seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Uncalibrated log-probabilities (``logit_*``, TTA views averaged) of every readable test image,
    and each one's nearest test images in this model's feature space.

    Calibration, neighbour smoothing and the fold ensemble come after, from the
    out-of-fold predictions; unreadable test images are left to the submission.
    """
    config = parse_params(inference.InferenceConfig, inference_params, "inference")
    check_cache_matches_index(image_cache, image_index)
    test = image_index[(image_index["split"] == "test") & image_index["valid"]]
    names = test["img"].tolist()
    probabilities, features = inference.predict_with_features(model, image_cache, names, config, seed=seed)
    predictions = pd.DataFrame(log_probabilities(probabilities), columns=LOGITS)
    predictions.insert(0, "img", names)
    return predictions, find_neighbours(
        features, names, config.neighbours.max_neighbours, config.neighbours.search_dims
    )


def find_valid_neighbours(
    model: dict,
    image_cache: ImageCache,
    valid_predictions: pd.DataFrame,
    inference_params: dict[str, Any],
    seed: int,
) -> pd.DataFrame:
    """Each validation image's nearest validation images (held-out drivers only), as for the test images."""
    config = parse_params(inference.InferenceConfig, inference_params, "inference")
    names = valid_predictions["img"].tolist()
    _, features = inference.predict_with_features(
        model, image_cache, names, config.model_copy(update={"tta": []}), seed
    )
    return find_neighbours(features, names, config.neighbours.max_neighbours, config.neighbours.search_dims)
