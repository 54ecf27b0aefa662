"""The pictures the lesson draws of a collaborative filtering model, and its learning curves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from sklearn.decomposition import PCA
from torch import nn

from statefarm.evaluation.reports import lay_out

_SHOWN = 12


def movie_bias_figure(model: nn.Module, rows: np.ndarray, titles: np.ndarray, name: str, min_ratings: int) -> Figure:
    """The movies with the lowest and highest learned bias: liked or disliked whoever watches them.

    Each bias is drawn in stars: what it adds to (or takes from) the rating of a user and a
    movie whose factors and biases are otherwise nil, the model's rating of a typical pair.
    """
    figure = Figure(figsize=(13, 6))
    if getattr(model, "movie_bias", None) is None:
        figure.text(0.5, 0.5, f"{name} has no movie biases", ha="center", va="center", fontsize=14)
        return figure
    with torch.no_grad():
        logit = model.movie_bias.weight[rows, 0]
        typical = model.scale(model.offset)
        bias = (model.scale(model.offset + logit) - typical).numpy()
    order = np.argsort(bias)
    for axes, chosen, title in zip(
        figure.subplots(1, 2), (order[:_SHOWN], order[::-1][:_SHOWN]), ("lowest", "highest"), strict=True
    ):
        axes.barh(range(len(chosen)), bias[chosen], color="tab:red" if title == "lowest" else "tab:green")
        axes.set_yticks(range(len(chosen)), [_short(t) for t in titles[chosen]])
        axes.invert_yaxis()
        axes.set(title=f"{title} movie bias", xlabel=f"stars added to a typical rating ({float(typical):.2f})")
    figure.suptitle(f"{name}: movie biases in stars, movies with at least {min_ratings} ratings")
    lay_out(figure)
    return figure


def movie_pca_figure(model: nn.Module, rows: np.ndarray, titles: np.ndarray, name: str, min_ratings: int) -> Figure:
    """The movie factors on their first two principal components, the movies at each end named."""
    factors = model.movie_factors.weight.detach().numpy()[rows]
    figure = Figure(figsize=(13, 10))
    axes = figure.subplots()
    if factors.shape[1] < 2 or len(rows) < 3:
        axes.text(0.5, 0.5, f"{name} has fewer than two factors to project", ha="center", va="center")
        return figure
    pca = PCA(n_components=2).fit(factors)
    points = pca.transform(factors)
    axes.scatter(points[:, 0], points[:, 1], s=6, alpha=0.3, color="grey", label="a movie")
    for component, colour in ((0, "tab:blue"), (1, "tab:orange")):
        order = np.argsort(points[:, component])
        ends = np.array([*order[:5], *order[-5:]])
        axes.scatter(points[ends, 0], points[ends, 1], s=14, color=colour,
                     label=f"the five at each end of component {component + 1}")  # fmt: skip
        for rank, movie in enumerate(ends):  # every other name a little lower, so that neighbours do not overlap
            axes.annotate(_short(titles[movie]), points[movie], xytext=(4, -9 * (rank % 2)),
                          textcoords="offset points", fontsize=8, color=colour)  # fmt: skip
    share = pca.explained_variance_ratio_
    axes.set(
        xlabel=f"component 1 ({share[0]:.0%} of the variance)",
        ylabel=f"component 2 ({share[1]:.0%})",
        title=f"{name}: movie factors, movies with at least {min_ratings} ratings",
    )
    axes.legend(loc="best", fontsize=8)
    lay_out(figure)
    return figure


def learning_curves_figure(history: pd.DataFrame) -> Figure:
    """Train and held-out RMSE per epoch, one panel per split, one colour per model."""
    splits = list(dict.fromkeys(history["split"]))
    figure = Figure(figsize=(7 * len(splits), 5))
    for axes, split in zip(np.atleast_1d(figure.subplots(1, len(splits))), splits, strict=True):
        for colour, (model, curve) in enumerate(history[history["split"] == split].groupby("model", sort=False)):
            epochs = curve["epoch"] + 1
            axes.plot(epochs, curve["valid_rmse"], marker="o", color=f"C{colour}", label=f"{model} held out")
            axes.plot(epochs, curve["train_rmse"], linestyle="--", color=f"C{colour}", label=f"{model} train")
        axes.set(title=f"{split} split: RMSE per epoch", xlabel="epoch", ylabel="RMSE")
        axes.xaxis.get_major_locator().set_params(integer=True)
        axes.legend(fontsize=8)
    lay_out(figure)
    return figure


def ranking_figure(comparison: pd.DataFrame, k: int) -> Figure:
    """NDCG and precision at ``k`` of each model's top-k lists, one panel per split, the popularity baseline marked."""
    splits = list(dict.fromkeys(comparison["split"]))
    figure = Figure(figsize=(7 * len(splits), 5))
    for axes, split in zip(np.atleast_1d(figure.subplots(1, len(splits))), splits, strict=True):
        scores = comparison[comparison["split"] == split].dropna(subset=[f"ndcg_at_{k}"]).set_index("model")
        positions = np.arange(len(scores))
        axes.bar(positions - 0.2, scores[f"ndcg_at_{k}"], width=0.4, label=f"NDCG@{k}")
        axes.bar(positions + 0.2, scores[f"precision_at_{k}"], width=0.4, label=f"precision@{k}")
        if "popularity" in scores.index:
            axes.axhline(scores.at["popularity", f"ndcg_at_{k}"], color="grey", linestyle="--",
                         label=f"popularity's NDCG@{k}")  # fmt: skip
        axes.set_xticks(positions, scores.index, rotation=30, ha="right")
        axes.set(title=f"{split} split: top-{k} lists on the held-out ratings (higher is better)", ylabel="score")
        axes.set_ylim(top=axes.get_ylim()[1] * 1.2)  # headroom: the legend above the tallest bar, not on it
        axes.legend(fontsize=8, ncols=3, loc="upper left")
    lay_out(figure)
    return figure


def _short(title: str, length: int = 40) -> str:
    return title if len(title) <= length else title[: length - 1] + "…"
