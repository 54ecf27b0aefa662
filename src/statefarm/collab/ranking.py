"""Top-k recommendations judged as a user meets them: precision, recall and NDCG at k, and catalogue coverage.

Each user seen in training gets the ``k`` movies of the catalogue that score highest, less
the movies they rated in training (the catalogue: the movies with enough training ratings,
as ``recommendations.csv`` lists them); a held-out rating of at least
``relevant_rating`` stars is a hit. Scores are made a chunk of users at a time, so nothing
is ever users x movies in memory.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from implicit.cpu.als import AlternatingLeastSquares
from pydantic import Field
from scipy import sparse
from threadpoolctl import threadpool_limits
from torch import nn

from statefarm.collab.models import predict_rows
from statefarm.collab.ratings import IdIndex
from statefarm.config import Params

NO_MOVIE = -1  # the rest of a list when fewer than k movies are left to recommend
USERS_PER_CHUNK = 32  # x every movie: about 300,000 pairs at a time on ml-latest-small

# Scores of every movie row (1..n_movies-1) for each user row given: (users, movies - 1).
Scorer = Callable[[np.ndarray], np.ndarray]


class RankingConfig(Params):
    """How top-k lists are judged on the held-out ratings."""

    k: int = Field(10, ge=1, description="length of each user's list")
    relevant_rating: float = Field(4.0, ge=0.5, le=5.0, description="a held-out rating this high is a hit")


def score_names(k: int) -> tuple[str, ...]:
    """The columns ``ranking_scores`` fills, for lists of length ``k``."""
    return f"precision_at_{k}", f"recall_at_{k}", f"ndcg_at_{k}", f"coverage_at_{k}"


def rated_movies(index: IdIndex, train: pd.DataFrame) -> sparse.csr_matrix:
    """Which movie rows (from 1, as columns from 0) each user row rated in ``train``: never listed for them."""
    user_rows, movie_rows = index.rows(train)
    return sparse.csr_matrix(
        (np.ones(len(train), bool), (user_rows, movie_rows - 1)), shape=(index.n_users, index.n_movies - 1)
    )


def top_k(score: Scorer, users: np.ndarray, k: int, rated: sparse.csr_matrix, catalogue: np.ndarray) -> np.ndarray:
    """The ``k`` best movie rows for each of ``users`` (rows) among the ``catalogue`` (a mask over movie rows
    1..), the movies each ``rated`` (``rated_movies``) left out."""
    lists = []
    for start in range(0, len(users), USERS_PER_CHUNK):
        chunk = users[start : start + USERS_PER_CHUNK]
        scores = np.array(score(chunk), dtype=np.float64)
        scores[rated[chunk].toarray() | ~catalogue] = -np.inf
        best = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        best_scores = np.take_along_axis(scores, best, axis=1)
        order = np.argsort(-best_scores, axis=1, kind="stable")
        rows = np.take_along_axis(best, order, axis=1) + 1
        rows[np.take_along_axis(best_scores, order, axis=1) == -np.inf] = NO_MOVIE  # fewer than k left to list
        lists.append(rows)
    return np.concatenate(lists) if lists else np.empty((0, k), np.int64)


def ranking_scores(recommended: np.ndarray, relevant: list[set[int]], catalogue: int) -> dict[str, float]:
    """Mean precision, recall and NDCG at k of each user's list against their relevant movies, and coverage.

    ``recommended`` is one row of k movie rows per user, ``relevant`` each user's set of
    relevant movie rows (an unseen movie, row 0, counts against recall: no list can hold it).
    """
    k = recommended.shape[1]
    discounts = 1 / np.log2(np.arange(2, k + 2))
    precision, recall, ndcg = [], [], []
    for movies, wanted in zip(recommended, relevant, strict=True):
        hits = np.isin(movies, list(wanted))
        precision.append(hits.sum() / k)
        recall.append(hits.sum() / len(wanted))
        ndcg.append((discounts * hits).sum() / discounts[: min(k, len(wanted))].sum())
    listed = np.unique(recommended[recommended != NO_MOVIE])
    scores = (np.mean(precision), np.mean(recall), np.mean(ndcg), len(listed) / catalogue)
    return dict(zip(score_names(k), map(float, scores), strict=True))


def judge_top_k(
    scorers: dict[str, Scorer],
    index: IdIndex,
    train: pd.DataFrame,
    valid: pd.DataFrame,
    config: RankingConfig,
    min_ratings: int = 1,
) -> dict[str, dict[str, float]]:
    """``ranking_scores`` of each scorer's top-k lists among the movies with ``min_ratings`` training ratings or
    more, for the users with a relevant held-out rating."""
    liked = valid[(valid["rating"] >= config.relevant_rating) & valid["userId"].isin(index.users)]
    user_rows, movie_rows = index.rows(liked)
    relevant = pd.Series(movie_rows).groupby(user_rows).agg(set)
    users = relevant.index.to_numpy()
    catalogue = np.bincount(index.rows(train)[1], minlength=index.n_movies)[1:] >= min_ratings
    rated = rated_movies(index, train)  # once for every scorer
    return {
        name: ranking_scores(top_k(score, users, config.k, rated, catalogue), list(relevant), catalogue.sum())
        for name, score in scorers.items()
    }


def model_scorer(model: nn.Module, index: IdIndex, mean: float) -> Scorer:
    """Every user's scores from a torch model: its predicted rating of each movie, unclipped."""
    movies = torch.arange(1, index.n_movies)

    def score(users: np.ndarray) -> np.ndarray:
        rows = torch.from_numpy(users.astype(np.int64))
        predicted = predict_rows(model, rows.repeat_interleave(len(movies)), movies.repeat(len(rows)), mean, clip=False)
        return predicted.reshape(len(rows), len(movies)).numpy()

    return score


def mean_scorer(scorers: list[Scorer]) -> Scorer:
    """The mean of several scorers' scores (the ensemble's ranking)."""
    return lambda users: np.mean([score(users) for score in scorers], axis=0)


def svd_scorer(svd, index: IdIndex) -> Scorer:
    """Every user's scores from a fitted scikit-surprise ``SVD``: ``mu + b_u + b_i + p_u . q_i``."""
    trainset = svd.trainset
    items = np.array([trainset.to_inner_iid(movie) for movie in index.movies])
    users = np.array([trainset.to_inner_uid(user) for user in index.users])
    item_bias, item_factors = svd.bi[items], svd.qi[items]

    def score(rows: np.ndarray) -> np.ndarray:
        inner = users[rows - 1]
        return trainset.global_mean + svd.bu[inner][:, None] + item_bias[None, :] + svd.pu[inner] @ item_factors.T

    return score


class ImplicitALSConfig(Params):
    """``implicit``'s alternating least squares on who rated what (every training rating an interaction,
    whatever its stars): the implicit-feedback reference for top-k lists, which it fits directly."""

    factors: int = Field(64, ge=1)
    regularization: float = Field(0.05, ge=0)
    alpha: float = Field(1.0, gt=0, description="confidence of an interaction over an unseen pair")
    iterations: int = Field(15, ge=1)


def implicit_als_scorer(config: ImplicitALSConfig, index: IdIndex, train: pd.DataFrame, seed: int) -> Scorer:
    """Every user's scores from ``implicit``'s ALS fitted on ``train``'s interactions: ``user . movie`` factors."""
    interactions = rated_movies(index, train).astype(np.float32)
    with threadpool_limits(1, "blas"):  # implicit's own threads; BLAS threads on top only contend (its warning)
        model = AlternatingLeastSquares(
            factors=config.factors, regularization=config.regularization, alpha=config.alpha,
            iterations=config.iterations, random_state=seed,
        )  # fmt: skip
        model.fit(interactions, show_progress=False)
    users, movies = model.user_factors, model.item_factors
    return lambda rows: users[rows] @ movies.T


def popularity_scorer(index: IdIndex, train: pd.DataFrame) -> Scorer:
    """Every user's scores: how many training ratings each movie has (the baseline every recommender must beat)."""
    counts = np.bincount(index.rows(train)[1], minlength=index.n_movies)[1:].astype(np.float64)
    return lambda users: np.broadcast_to(counts, (len(users), len(counts)))
