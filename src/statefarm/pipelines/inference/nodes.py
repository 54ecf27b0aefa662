"""Nodes of ``inference``: one fold model's predictions of every readable test image."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from statefarm.data.cache import ImageCache, check_cache_matches_index
from statefarm.data.layout import readable_test_images
from statefarm.evaluation import inference
from statefarm.evaluation.cross_validation import LOGITS, check_predictions_are_the_models, log_probabilities
from statefarm.evaluation.neighbours import NeighbourConfig, find_neighbours, find_neighbours_at_density, pixel_features
from statefarm.runtime.config import RuntimeConfig

logger = logging.getLogger(__name__)


def find_test_neighbours_in_pixels(
    image_cache: ImageCache, image_index: pd.DataFrame, config: inference.InferenceConfig
) -> pd.DataFrame:
    """Each readable test image's nearest test images in pixels, searched once for every fold and stage.

    Neighbours in pixels do not depend on the model, so the chain searches them here
    rather than in each of its fold models' predictions (20 times over with a blend of
    two). With ``inference.neighbours.space: model`` each fold model searches its own
    features instead, and this table is empty.
    """
    if config.neighbours.space != "pixels":
        return pd.DataFrame({"img": pd.Series([], dtype=str)})
    check_cache_matches_index(image_cache, image_index)
    names = readable_test_images(image_index)
    search = config.neighbours
    return find_neighbours(_pixels(image_cache, names, search), names, search.max_neighbours, search.search_dims)


def predict_test_images(
    model: dict,
    valid_predictions: pd.DataFrame,
    image_cache: ImageCache,
    image_index: pd.DataFrame,
    test_pixel_neighbours: pd.DataFrame,
    config: inference.InferenceConfig,
    where: RuntimeConfig,
    seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Uncalibrated log-probabilities (``logit_*``, TTA views averaged) of every readable test image,
    and each one's nearest test images (in this model's feature space, or in pixels: ``inference.neighbours``).

    Calibration, neighbour smoothing and the fold ensemble come after, from the
    out-of-fold predictions (``valid_predictions``, which must be this model's); unreadable
    test images are left to the submission.

    Raises:
        OutOfFoldError: ``valid_predictions`` come from another run than ``model``.
        ValueError: In pixels, when ``test_pixel_neighbours`` was searched for other test
            images or another number of neighbours (a partial run over an older table).
    """
    check_predictions_are_the_models(model, valid_predictions)
    check_cache_matches_index(image_cache, image_index)
    names = readable_test_images(image_index)
    if config.neighbours.space == "model":
        probabilities, features = inference.predict_with_features(model, image_cache, names, config, where, seed=seed)
        neighbours = find_neighbours(features, names, config.neighbours.max_neighbours, config.neighbours.search_dims)
    else:
        probabilities = inference.predict_probabilities(model, image_cache, names, config, where, seed=seed)
        neighbours = _checked_pixel_neighbours(test_pixel_neighbours, names, config.neighbours.max_neighbours)
    predictions = pd.DataFrame(log_probabilities(probabilities), columns=LOGITS)
    predictions.insert(0, "img", names)
    return predictions, neighbours


def _checked_pixel_neighbours(table: pd.DataFrame, names: list[str], max_neighbours: int) -> pd.DataFrame:
    found = sum(column.startswith("neighbour_") for column in table.columns)
    if table["img"].tolist() != names or found != max_neighbours:
        raise ValueError(
            f"test_pixel_neighbours holds {found} neighbours of {len(table)} images, not {max_neighbours} of this "
            f"run's {len(names)} test images: rerun find_test_neighbours_in_pixels (it is searched once per run)"
        )
    return table


def find_valid_neighbours(
    model: dict,
    image_cache: ImageCache,
    valid_predictions: pd.DataFrame,
    test_neighbours: pd.DataFrame,
    config: inference.InferenceConfig,
    where: RuntimeConfig,
    seed: int,
) -> pd.DataFrame:
    """Each validation image's nearest validation images (held-out drivers only), as for the test images.

    With ``inference.neighbours.match_test_density``, they are searched among the share of
    the held-out images whose spacing matches ``test_neighbours``' (the median distance to
    the nearest neighbour), so that the smoothing is tuned on neighbours as far apart as
    the test images' are.
    """
    search = config.neighbours
    names = valid_predictions["img"].tolist()
    if search.space == "model":
        _, features = inference.predict_with_features(
            model, image_cache, names, config.model_copy(update={"tta": []}), where, seed
        )
    else:
        features = _pixels(image_cache, names, search)
    if not search.match_test_density:
        return find_neighbours(features, names, search.max_neighbours, search.search_dims)
    test_distance = float(test_neighbours["distance_0"].median())
    table, share = find_neighbours_at_density(
        features, names, search.max_neighbours, search.search_dims, test_distance, seed
    )
    logger.info(
        "Validation neighbours among %.0f%% of the %d held-out images: median nearest distance %.4f, test %.4f",
        100 * share, len(names), table["distance_0"].median(), test_distance,
    )  # fmt: skip
    return table


def _pixels(image_cache: ImageCache, names: list[str], search: NeighbourConfig) -> np.ndarray:
    return pixel_features(image_cache.images, image_cache.rows_of(names), search.pixel_size)
