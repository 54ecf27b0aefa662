"""Test-neighbour smoothing: blend each image's probabilities with those of its nearest neighbours.

The test images are video frames: in a model's feature space an image's nearest
neighbours are mostly the same driver doing the same thing seconds apart, so their mean
prediction is a steadier estimate than one frame's (the trick that won this competition).
How many neighbours, how much of their mean, and whether nearer ones count more are
chosen on the out-of-fold images, where each held-out driver's neighbours are found among
the held-out images of its fold, as a test image's are among the test images.

The search is scikit-learn's exact ``NearestNeighbors`` on L2-normalized features (cosine
distance), in blocks, so 80,000 images never make an 80,000 x 80,000 matrix.
"""

from __future__ import annotations

import itertools
from typing import Annotated, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors

from statefarm.config import Params
from statefarm.metrics import log_loss

Weighting = Literal["uniform", "similarity"]


class NeighbourConfig(Params):
    """The search and the grid the blend is chosen from (on out-of-fold log loss).

    ``weights: [0.0]`` turns smoothing off; the grid keeps 0 so that it is off when it does not help.
    """

    max_neighbours: int = Field(20, ge=1, description="neighbours kept per image; the grid's k are at most this")
    search_dims: int | None = Field(
        128, ge=2, description="search on this many principal components of the features (faster); null: all"
    )
    neighbours: list[Annotated[int, Field(ge=1)]] = Field([1, 3, 5, 10, 20], min_length=1)
    weights: list[Annotated[float, Field(ge=0, le=1)]] = Field(
        [0.0, 0.2, 0.4, 0.6, 0.8, 0.9], min_length=1, description="share of the neighbours' mean"
    )
    weightings: list[Weighting] = Field(["uniform", "similarity"], min_length=1)


def penultimate_features(model: torch.nn.Module, run_forward) -> tuple[object, np.ndarray]:
    """Run ``run_forward()`` while recording what ``model``'s classifier receives; return its result and those inputs.

    The classifier's input is the model's own summary of an image (the pooled features of
    a timm network, the hidden layer of the small CNN): what its predictions rest on.
    """
    captured: list[torch.Tensor] = []
    hook = model.get_classifier().register_forward_pre_hook(
        lambda module, args: captured.append(args[0].detach().float().flatten(1).cpu())
    )
    try:
        result = run_forward()
    finally:
        hook.remove()
    return result, torch.cat(captured).numpy()


def find_neighbours(features: np.ndarray, names: list[str], k: int, dims: int | None = None) -> pd.DataFrame:
    """Each image's ``k`` nearest other images by cosine distance: ``img``, ``neighbour_<j>``, ``distance_<j>``.

    ``neighbour_<j>`` is a row number of this same table; fewer than ``k + 1`` images
    keep every other image as a neighbour. With ``dims``, the search runs on that many
    principal components of the features (centred), which cuts its time in proportion.
    """
    k = min(k, len(names) - 1)
    if k < 1:
        raise ValueError(f"neighbour smoothing needs at least two images, got {len(names)}")
    if dims is not None and dims < min(features.shape):
        features = PCA(n_components=dims, svd_solver="randomized", random_state=0).fit_transform(features)
    unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    search = NearestNeighbors(n_neighbors=k + 1, algorithm="brute", metric="euclidean", n_jobs=-1).fit(unit)
    distances, indices = search.kneighbors(unit)
    not_self = indices != np.arange(len(names))[:, None]
    not_self[not_self.all(axis=1), -1] = False  # an exact duplicate may come first: drop the farthest instead
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
    groups, positions = [], []
    for fold, table in sorted(fold_neighbours.items()):
        rows = oof.index[oof["fold"] == fold]
        order = pd.Series(rows, index=oof.loc[rows, "img"]).reindex(table["img"])
        if order.isna().any() or len(order) != len(rows):
            raise ValueError(f"fold {fold}: its neighbour table and its out-of-fold images differ")
        selected = oof.loc[order.to_numpy()]
        groups.append((selected[probability_columns].to_numpy(np.float64), selected["label"].to_numpy(np.int64), table))
        positions.append(order.to_numpy())
    choice, grid = choose_smoothing(groups, config)
    smoothed = oof.copy()
    smoothed["p_label_unsmoothed"] = oof[probability_columns].to_numpy()[np.arange(len(oof)), oof["label"].to_numpy()]
    for (probabilities, _, table), rows in zip(groups, positions, strict=True):
        after = smooth(probabilities, table, choice["neighbours"], choice["weight"], choice["weighting"])
        smoothed.loc[rows, probability_columns] = after
    return smoothed, choice, grid
