"""Test-neighbour smoothing: blend each image's probabilities with those of its nearest neighbours.

The test images are video frames: in a model's feature space an image's nearest
neighbours are mostly the same driver doing the same thing seconds apart, so their mean
prediction is a steadier estimate than one frame's (the trick that won this competition).
How many neighbours, how much of their mean, and whether nearer ones count more are
chosen on the out-of-fold images, where each held-out driver's neighbours are found among
the held-out images of its fold, as a test image's are among the test images.

Neighbours are searched in the fold model's feature space (``space: model``), or among
the images themselves, downscaled (``space: pixels``): frames of one camera seconds apart
differ in a few pixels, which no model has to learn.

The search is scikit-learn's exact ``NearestNeighbors`` on L2-normalized features (cosine
distance), in blocks, so 80,000 images never make an 80,000 x 80,000 matrix.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Literal

import cv2
import numpy as np
import pandas as pd
import torch
from pydantic import Field
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors

from statefarm.config import Params
from statefarm.evaluation.metrics import log_loss

Weighting = Literal["uniform", "similarity"]
Space = Literal["model", "pixels"]
# Shares of a fold's held-out images searched for neighbours, to match the test set's spacing.
DENSITY_SHARES = (1.0, 0.5, 0.25, 0.125, 0.0625)


class NeighbourConfig(Params):
    """The search and the grid the blend is chosen from (on out-of-fold log loss).

    ``weights: [0.0]`` turns smoothing off; the grid keeps 0 so that it is off when it does not help.
    """

    space: Space = Field("model", description="model: what the fold model's classifier sees; pixels: the images")
    pixel_size: tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]] = Field(
        (30, 40), description="(height, width) the images are downscaled to for space: pixels"
    )
    match_test_density: bool = Field(
        True, description="search a held-out image's neighbours among the share of its fold spaced as the test set"
    )
    max_neighbours: int = Field(20, ge=1, description="neighbours kept per image; the grid's k are at most this")
    search_dims: int | None = Field(
        128, ge=2, description="search on this many principal components of the features (faster); null: all"
    )
    neighbours: list[Annotated[int, Field(ge=1)]] = Field([1, 3, 5, 10, 20], min_length=1)
    weights: list[Annotated[float, Field(ge=0, le=1)]] = Field(
        [0.0, 0.2, 0.4, 0.6, 0.8, 0.9], min_length=1, description="share of the neighbours' mean"
    )
    weightings: list[Weighting] = Field(["uniform", "similarity"], min_length=1)


@contextmanager
def classifier_inputs(model: torch.nn.Module) -> Iterator[list[torch.Tensor]]:
    """A list that collects, while the block runs, what ``model``'s classifier receives on each forward pass
    (float32, flattened, on the host).

    The classifier's input is the model's own summary of an image (the pooled features of
    a timm network, the hidden layer of the small CNN): what its predictions rest on.
    """
    captured: list[torch.Tensor] = []
    hook = model.get_classifier().register_forward_pre_hook(
        lambda module, args: captured.append(args[0].detach().float().flatten(1).cpu())
    )
    try:
        yield captured
    finally:
        hook.remove()


def penultimate_features(model: torch.nn.Module, run_forward) -> tuple[object, np.ndarray]:
    """Run ``run_forward()`` while recording what ``model``'s classifier receives; its result and those inputs."""
    with classifier_inputs(model) as captured:
        result = run_forward()
    return result, torch.cat(captured).numpy()


def pixel_features(images: np.ndarray, rows: np.ndarray, size: tuple[int, int], block: int = 4096) -> np.ndarray:
    """The images at ``rows`` area-downscaled to ``size`` and flattened, each less its own mean brightness.

    ``images`` is the cache's ``(N, H, W, 3)`` uint8 array; it is read ``block`` rows at a
    time, so a memory-mapped test set of 80,000 images is never in memory whole.
    """
    height, width = size
    features = np.empty((len(rows), height * width * 3), np.float32)
    for start in range(0, len(rows), block):
        chunk = images[np.asarray(rows[start : start + block])]
        small = [cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA) for image in chunk]
        features[start : start + len(chunk)] = np.asarray(small, np.float32).reshape(len(chunk), -1)
    return features - features.mean(axis=1, keepdims=True)


def find_neighbours(
    features: np.ndarray, names: list[str], k: int, dims: int | None = None, pool: np.ndarray | None = None
) -> pd.DataFrame:
    """Each image's ``k`` nearest other images by cosine distance: ``img``, ``neighbour_<j>``, ``distance_<j>``.

    ``neighbour_<j>`` is a row number of this same table; fewer than ``k + 1`` images
    keep every other image as a neighbour. With ``dims``, the search runs on that many
    principal components of the features (centred), which cuts its time in proportion.
    With ``pool`` (sorted row numbers), neighbours are searched among those rows only.
    """
    return _search(_unit_projection(features, names, dims), names, k, pool)


def find_neighbours_at_density(
    features: np.ndarray, names: list[str], k: int, dims: int | None, nearest_distance: float, seed: int
) -> tuple[pd.DataFrame, float]:
    """``find_neighbours`` among the random share of the images whose spacing is the test set's.

    A held-out driver has every frame of its videos, while a test set may hold fewer per
    driver (the 80x60 one a quarter to an eighth), so its neighbours lie further apart in time,
    and a smoothing tuned on the denser frames would be tuned for neighbours the test
    images do not have. The share (one of ``DENSITY_SHARES``) is the one whose median
    distance to the nearest neighbour is closest, as a ratio, to ``nearest_distance`` (the
    test set's). Every image still gets ``k`` neighbours. Returns the table and the share.
    """
    unit = _unit_projection(features, names, dims)
    order = np.random.default_rng(seed).permutation(len(names))
    best: tuple[float, float, pd.DataFrame] | None = None
    for share in DENSITY_SHARES:
        pool = np.sort(order[: max(k + 1, round(share * len(names)))])
        table = _search(unit, names, k, pool)
        gap = abs(np.log(max(float(table["distance_0"].median()), 1e-9) / max(nearest_distance, 1e-9)))
        if best is None or gap < best[0]:
            best = (gap, share, table)
    return best[2], best[1]


def _unit_projection(features: np.ndarray, names: list[str], dims: int | None) -> np.ndarray:
    if len(names) < 2:
        raise ValueError(f"neighbour smoothing needs at least two images, got {len(names)}")
    if dims is not None and dims < min(features.shape):
        features = PCA(n_components=dims, svd_solver="randomized", random_state=0).fit_transform(features)
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


def _search(unit: np.ndarray, names: list[str], k: int, pool: np.ndarray | None) -> pd.DataFrame:
    pool = np.arange(len(names)) if pool is None else np.asarray(pool)
    k = min(k, len(pool) - 1)
    search = NearestNeighbors(n_neighbors=k + 1, algorithm="brute", metric="euclidean", n_jobs=-1).fit(unit[pool])
    distances, found = search.kneighbors(unit)
    indices = pool[found]
    not_self = indices != np.arange(len(names))[:, None]
    # The image itself, outside the pool or behind an exact duplicate, may not come first: drop the farthest instead.
    not_self[not_self.all(axis=1), -1] = False
    indices = indices[not_self].reshape(len(names), k)
    cosine = (distances[not_self].reshape(len(names), k) ** 2) / 2  # |a - b|^2 / 2 = 1 - cos on the unit sphere
    table = pd.DataFrame({"img": names})
    for j in range(k):
        table[f"neighbour_{j}"] = indices[:, j]
        table[f"distance_{j}"] = cosine[:, j].astype(np.float32)
    return table


def smooth(
    probabilities: np.ndarray, neighbours: pd.DataFrame, k: int, weight: float, weighting: Weighting
) -> np.ndarray:
    """``(1 - weight) * p + weight * (mean of the k nearest neighbours' p)``, rows still summing to 1.

    ``similarity`` weighs each neighbour by its cosine similarity (floored at a small
    positive value), so near-duplicates count more than passers-by.
    """
    if weight == 0:
        return probabilities
    indices = neighbours[[f"neighbour_{j}" for j in range(k)]].to_numpy()
    if weighting == "uniform":
        share = np.full(indices.shape, 1.0 / k)
    else:
        similarity = 1 - neighbours[[f"distance_{j}" for j in range(k)]].to_numpy(np.float64)
        share = np.maximum(similarity, 1e-3)
        share /= share.sum(axis=1, keepdims=True)
    around = np.einsum("nk,nkc->nc", share, probabilities[indices])
    return (1 - weight) * probabilities + weight * around


def choose_smoothing(
    groups: list[tuple[np.ndarray, np.ndarray, pd.DataFrame]], config: NeighbourConfig
) -> tuple[dict, pd.DataFrame]:
    """The (k, weight, weighting) with the lowest log loss over every group's images.

    Each group is one fold's held-out images: ``(probabilities, labels, neighbours)``,
    with the neighbours found among that group alone. Returns the choice (with the log
    loss before and after) and the whole grid's scores.
    """
    labels = np.concatenate([group[1] for group in groups])
    most = min(config.max_neighbours, *((len(table.columns) - 1) // 2 for _, _, table in groups))
    rows = []
    for k, weight, weighting in itertools.product(config.neighbours, config.weights, config.weightings):
        k = min(k, most)
        smoothed = np.concatenate([smooth(p, table, k, weight, weighting) for p, _, table in groups])
        rows.append({"neighbours": k, "weight": weight, "weighting": weighting, "log_loss": log_loss(smoothed, labels)})
    grid = pd.DataFrame(rows).drop_duplicates(["neighbours", "weight", "weighting"]).reset_index(drop=True)
    best = grid.loc[grid["log_loss"].idxmin()]
    before = log_loss(np.concatenate([group[0] for group in groups]), labels)
    choice = {
        "neighbours": int(best["neighbours"]),
        "weight": float(best["weight"]),
        "weighting": str(best["weighting"]),
        "log_loss_before": before,
        "log_loss_after": float(best["log_loss"]),
    }
    return choice, grid


def smooth_out_of_fold(
    oof: pd.DataFrame, fold_neighbours: dict[int, pd.DataFrame], config: NeighbourConfig, probability_columns: list[str]
) -> tuple[pd.DataFrame, dict, pd.DataFrame]:
    """Choose the smoothing on the out-of-fold images and apply it to them.

    Each fold's images are smoothed with their neighbours among that fold's held-out
    images. The table keeps ``p_label_unsmoothed``, each image's probability of its true
    class before smoothing, so the report can show both.

    Returns:
        The smoothed table, the choice (``choose_smoothing``) and the grid's scores.
    """
    groups, positions = _fold_groups(oof, fold_neighbours, probability_columns)
    choice, grid = choose_smoothing(list(groups.values()), config)
    smoothed = oof.copy()
    smoothed["p_label_unsmoothed"] = oof[probability_columns].to_numpy()[np.arange(len(oof)), oof["label"].to_numpy()]
    for fold, (probabilities, _, table) in groups.items():
        after = smooth(probabilities, table, choice["neighbours"], choice["weight"], choice["weighting"])
        smoothed.loc[positions[fold], probability_columns] = after
    return smoothed, choice, grid


def choose_smoothing_without_each_fold(
    oof: pd.DataFrame, fold_neighbours: dict[int, pd.DataFrame], config: NeighbourConfig, probability_columns: list[str]
) -> dict[int, dict]:
    """For each fold, the smoothing chosen on the other folds' out-of-fold images alone.

    Fold ``k``'s pseudo-labels come from the one model that never saw fold ``k``'s drivers;
    smoothing them with a choice made on fold ``k``'s labels would let those labels into
    the training of the model validated on them. With a single fold there is nothing
    else to choose on, and smoothing is off (weight 0).
    """
    groups, _ = _fold_groups(oof, fold_neighbours, probability_columns)
    off = {"neighbours": 1, "weight": 0.0, "weighting": "uniform", "chosen_on_folds": []}
    choices = {}
    for fold in groups:
        others = [group for other, group in groups.items() if other != fold]
        if not others:
            choices[fold] = off
            continue
        choice, _ = choose_smoothing(others, config)
        choices[fold] = {**choice, "chosen_on_folds": [other for other in groups if other != fold]}
    return choices


def _fold_groups(
    oof: pd.DataFrame, fold_neighbours: dict[int, pd.DataFrame], probability_columns: list[str]
) -> tuple[dict[int, tuple[np.ndarray, np.ndarray, pd.DataFrame]], dict[int, np.ndarray]]:
    """Each fold's ``(probabilities, labels, neighbours)`` in its neighbour table's order, and their OOF rows."""
    groups, positions = {}, {}
    for fold, table in sorted(fold_neighbours.items()):
        rows = oof.index[oof["fold"] == fold]
        order = pd.Series(rows, index=oof.loc[rows, "img"]).reindex(table["img"])
        if order.isna().any() or len(order) != len(rows):
            raise ValueError(f"fold {fold}: its neighbour table and its out-of-fold images differ")
        selected = oof.loc[order.to_numpy()]
        groups[fold] = (
            selected[probability_columns].to_numpy(np.float64),
            selected["label"].to_numpy(np.int64),
            table,
        )
        positions[fold] = order.to_numpy()
    return groups, positions
