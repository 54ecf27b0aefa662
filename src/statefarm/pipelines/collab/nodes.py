"""Nodes of ``collab``: check the ratings, compare the models on held-out ratings, train the
chosen one on every rating, then predict, recommend and draw what it learned."""

from __future__ import annotations

import logging
import time
from typing import Literal

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from pydantic import Field, model_validator

from statefarm.collab.models import (
    CollabModelConfig,
    CollabTrainingConfig,
    EncodedRatings,
    collab_checkpoint,
    create_collab_model,
    fit_collab,
    load_collab_model,
    predict_rows,
    rmse,
)
from statefarm.collab.ranking import (
    ImplicitALSConfig,
    RankingConfig,
    implicit_als_scorer,
    judge_top_k,
    mean_scorer,
    model_scorer,
    popularity_scorer,
    score_names,
    svd_scorer,
)
from statefarm.collab.ratings import RATING_SCALE, check_movies, check_pairs, check_ratings, split_ratings
from statefarm.collab.reports import learning_curves_figure, movie_bias_figure, movie_pca_figure, ranking_figure
from statefarm.config import Params
from statefarm.evaluation.metrics import as_metric_history
from statefarm.modeling.optim import OptimizerConfig, SchedulerConfig
from statefarm.runtime import tracking

logger = logging.getLogger(__name__)


class SVDConfig(Params):
    """scikit-surprise's ``SVD``, the reference a user would otherwise reach for."""

    n_factors: int = Field(100, ge=1)
    n_epochs: int = Field(20, ge=1)
    lr_all: float = Field(0.005, gt=0)
    reg_all: float = Field(0.02, ge=0)


class CollabConfig(Params):
    """Parameters of ``collab`` (``conf/base/parameters_collab.yml``)."""

    splits: list[Literal["random", "time"]] = Field(["random"], min_length=1)
    valid_fraction: float = Field(0.2, gt=0, lt=1)
    rating_range: tuple[float, float] = (0.0, 5.5)
    training: CollabTrainingConfig = CollabTrainingConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    models: dict[str, CollabModelConfig] = Field(min_length=1)
    ensemble: list[str] = Field([], description="models whose mean prediction is also scored")
    svd: SVDConfig = SVDConfig()
    implicit_als: ImplicitALSConfig | None = Field(
        ImplicitALSConfig(), description="implicit's ALS, ranked beside the models; null leaves it out"
    )
    final_model: str
    min_ratings: int = Field(20, ge=1, description="movies with fewer ratings are neither drawn nor recommended")
    top_n: int = Field(10, ge=1)
    ranking: RankingConfig = RankingConfig()

    @model_validator(mode="after")
    def _known_models(self) -> CollabConfig:
        for name in [*self.ensemble, self.final_model]:
            if name not in self.models:
                raise ValueError(f"{name!r} is not one of collab.models ({', '.join(self.models)})")
        low, high = self.rating_range
        if not low <= RATING_SCALE[0] < RATING_SCALE[1] <= high:
            raise ValueError(f"rating_range {self.rating_range} must cover the star scale {RATING_SCALE}")
        return self


def validate_ratings(
    ratings: pd.DataFrame, movies: pd.DataFrame, to_predict: pd.DataFrame | None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``ratings.csv``, ``movies.csv`` and ``to_predict.csv`` checked and typed (errors name the file and line),
    all before any training; no ``to_predict.csv`` asks for no pairs."""
    checked = check_ratings(ratings)
    movies = check_movies(movies)
    logger.info(
        "%d ratings of %d users on %d movies",
        len(checked),
        checked["userId"].nunique(),
        checked["movieId"].nunique(),
    )
    if to_predict is None:
        logger.info("No to_predict.csv beside the ratings: nothing to predict")
        return checked, movies, pd.DataFrame({"userId": [], "movieId": []}, dtype=np.int64)
    return checked, movies, check_pairs(to_predict, "to_predict.csv")


def _optimizer(config: CollabConfig, model: CollabModelConfig) -> OptimizerConfig:
    overrides = {"lr": model.lr, "weight_decay": model.weight_decay}
    return config.optimizer.model_copy(update={key: value for key, value in overrides.items() if value is not None})


def train_model(
    config: CollabConfig, name: str, data: EncodedRatings, seed: int, prefix: str
) -> tuple[torch.nn.Module, pd.DataFrame]:
    """Train ``config.models[name]`` on ``data``; per-epoch metrics go to MLflow under ``prefix``."""
    torch.manual_seed(seed)
    model = create_collab_model(config.models[name], data.index, config.rating_range, data.mean)
    history = fit_collab(
        model,
        data.train,
        data.valid,
        config.training,
        _optimizer(config, config.models[name]),
        config.scheduler,
        seed,
        on_epoch=lambda metrics, epoch: tracking.log_metrics(metrics, epoch, prefix),
    )
    return model, history


def fit_svd(config: SVDConfig, train: pd.DataFrame, seed: int):
    """scikit-surprise's ``SVD`` fitted on ``train``."""
    from surprise import SVD, Dataset, Reader  # imported here: only this reference needs it

    data = Dataset.load_from_df(train[["userId", "movieId", "rating"]], Reader(rating_scale=RATING_SCALE))
    return SVD(**config.model_dump(), random_state=seed).fit(data.build_full_trainset())


def svd_predictions(svd, valid: pd.DataFrame) -> np.ndarray:
    return np.array(
        [svd.predict(user, movie).est for user, movie in zip(valid["userId"], valid["movieId"], strict=True)]
    )


def _scores(split: str, model: str, predicted: np.ndarray, valid: pd.DataFrame, unseen: int, seconds: float) -> dict:
    actual = valid["rating"].to_numpy(np.float64)
    return {
        "split": split,
        "model": model,
        "rmse": rmse(predicted, actual),
        "mae": float(np.mean(np.abs(predicted - actual))),
        "ratings": len(valid),
        "unseen": unseen,
        "train_seconds": seconds,
    }


def compare_models(
    ratings: pd.DataFrame, config: CollabConfig, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, float]]:
    """Score every model on the same held-out ratings of each split in ``collab.splits``.

    Rows: the global mean, each of ``collab.models``, the ``ensemble`` mean and
    surprise's ``SVD``. ``unseen`` counts held-out ratings of a user or movie absent from
    training, answered from the biases or the mean. Nothing is chosen on these ratings:
    each model trains for its configured epochs, so the scores are honest estimates.

    Returns:
        The comparison table, every model's per-epoch history, and its metrics for MLflow.
    """
    rows, histories = [], []
    for split in config.splits:
        train, valid = split_ratings(ratings, split, config.valid_fraction, seed)
        data = EncodedRatings.encode(train, valid)
        held_out, mean = data.valid, data.mean
        unseen = int(((held_out.users == 0) | (held_out.movies == 0)).sum())
        logger.info("%s split: %d ratings to train on, %d held out (%d of unseen users or movies)",
                    split, len(train), len(valid), unseen)  # fmt: skip
        split_rows = [_scores(split, "global_mean", np.full(len(valid), mean), valid, unseen, 0.0)]
        predictions, scorers = {}, {"popularity": popularity_scorer(data.index, train)}
        for name in config.models:
            model, history = train_model(config, name, data, seed, prefix=f"collab.{split}.{name}.")
            predictions[name] = predict_rows(model, held_out.users, held_out.movies, mean).numpy()
            scorers[name] = model_scorer(model, data.index, mean)
            split_rows.append(_scores(split, name, predictions[name], valid, unseen, history["seconds"].iloc[-1]))
            histories.append(history.assign(split=split, model=name))
        if config.ensemble:
            mean_prediction = np.mean([predictions[name] for name in config.ensemble], axis=0)
            seconds = sum(row["train_seconds"] for row in split_rows if row["model"] in config.ensemble)
            split_rows.append(_scores(split, "ensemble", mean_prediction, valid, unseen, seconds))
            scorers["ensemble"] = mean_scorer([scorers[name] for name in config.ensemble])
        start = time.perf_counter()
        svd = fit_svd(config.svd, train, seed)
        split_rows.append(
            _scores(split, "surprise_svd", svd_predictions(svd, valid), valid, unseen, time.perf_counter() - start)
        )
        scorers["surprise_svd"] = svd_scorer(svd, data.index)
        split_rows.insert(1, {"split": split, "model": "popularity", "ratings": len(valid), "unseen": unseen})
        if config.implicit_als is not None:  # ranks, predicts no ratings
            scorers["implicit_als"] = implicit_als_scorer(config.implicit_als, data.index, train, seed)
            split_rows.append({"split": split, "model": "implicit_als", "ratings": len(valid), "unseen": unseen})
        ranking = judge_top_k(scorers, data.index, train, valid, config.ranking, config.min_ratings)
        rows += [row | ranking.get(row["model"], {}) for row in split_rows]
    comparison = pd.DataFrame(rows)
    logger.info("Held-out ratings:\n%s", comparison.to_string(index=False, float_format="%.4f"))
    metrics = as_metric_history(
        {
            f"{row.split}.{row.model}.{score}": float(getattr(row, score))
            for row in comparison.itertuples()
            for score in ("rmse", "mae", *score_names(config.ranking.k))
            if not np.isnan(getattr(row, score))
        }
    )
    history = pd.concat(histories, ignore_index=True)
    return comparison, history[["split", "model", *history.columns[:-2]]], metrics


def train_final_model(ratings: pd.DataFrame, config: CollabConfig, seed: int) -> dict:
    """``collab.final_model`` trained on every rating, for predictions and recommendations."""
    data = EncodedRatings.encode(ratings)
    model, _ = train_model(config, config.final_model, data, seed, prefix="collab.final.")
    return collab_checkpoint(model, config.models[config.final_model], data.index, config.rating_range, data.mean)


def predict_requested(checkpoint: dict, pairs: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """A rating for every ``userId,movieId`` of the checked ``to_predict.csv`` (``validate_ratings``).

    A user or movie never seen in training is answered from the biases (or the mean),
    never left blank; how many were is logged.
    """
    model, index, mean = load_collab_model(checkpoint)
    users, movies = (torch.from_numpy(rows) for rows in index.rows(pairs))
    predicted = predict_rows(model, users, movies, mean).numpy()
    counts = {
        "requested": len(pairs),
        "unseen_users": int((users == 0).sum()),
        "unseen_movies": int((movies == 0).sum()),
    }
    logger.info("Predicted %(requested)d ratings; unseen users: %(unseen_users)d, unseen movies: %(unseen_movies)d",
                counts)  # fmt: skip
    return pairs.assign(rating=predicted.round(4)), as_metric_history(
        {f"predictions.{k}": v for k, v in counts.items()}
    )


def _popular_movies(ratings: pd.DataFrame, min_ratings: int) -> pd.Index:
    counts = ratings["movieId"].value_counts()
    return pd.Index(np.sort(counts.index[counts >= min_ratings]))


def recommend(
    checkpoint: dict, ratings: pd.DataFrame, movies: pd.DataFrame, config: CollabConfig, chunk: int = 256
) -> pd.DataFrame:
    """Each user's ``top_n`` movies by predicted rating, among movies with ``min_ratings`` or more
    ratings that the user has not rated; with titles."""
    model, index, mean = load_collab_model(checkpoint)
    candidates = _popular_movies(ratings, config.min_ratings)
    movie_rows = torch.from_numpy(index.movies.get_indexer(candidates) + 1)
    seen = ratings[ratings["movieId"].isin(candidates)]
    seen_users, seen_movies = index.users.get_indexer(seen["userId"]), candidates.get_indexer(seen["movieId"])
    found = []
    for start in range(0, len(index.users), chunk):
        users = index.users[start : start + chunk]
        grid_users = (torch.arange(start, start + len(users)) + 1).repeat_interleave(len(movie_rows))
        scores = predict_rows(model, grid_users, movie_rows.repeat(len(users)), mean, clip=False).view(len(users), -1)
        in_chunk = (seen_users >= start) & (seen_users < start + len(users))
        scores[seen_users[in_chunk] - start, seen_movies[in_chunk]] = -np.inf
        best_scores, best = scores.topk(min(config.top_n, len(candidates)), dim=1)
        for user, columns, values in zip(users, best.numpy(), best_scores.numpy(), strict=True):
            found += [
                (user, rank + 1, candidates[column], value)
                for rank, (column, value) in enumerate(zip(columns, values, strict=True))
                if np.isfinite(value)
            ]
    table = pd.DataFrame(found, columns=["userId", "rank", "movieId", "predicted_rating"])
    table["predicted_rating"] = table["predicted_rating"].clip(*RATING_SCALE).round(4)
    return table.merge(movies, on="movieId", how="left")[["userId", "rank", "movieId", "title", "predicted_rating"]]


def draw_model(
    checkpoint: dict, ratings: pd.DataFrame, movies: pd.DataFrame, history: pd.DataFrame, config: CollabConfig
) -> tuple[Figure, Figure, Figure]:
    """The lesson's pictures: movie biases, a PCA of the movie factors, and the learning curves."""
    model, index, _ = load_collab_model(checkpoint)
    popular = _popular_movies(ratings, config.min_ratings)
    rows = index.movies.get_indexer(popular) + 1
    titles = movies.set_index("movieId")["title"].reindex(popular)
    titles = titles.fillna(pd.Series([f"movie {movie}" for movie in popular], popular))
    biases = movie_bias_figure(model, rows, titles.to_numpy(), config.final_model, config.min_ratings)
    pca = movie_pca_figure(model, rows, titles.to_numpy(), config.final_model, config.min_ratings)
    return biases, pca, learning_curves_figure(history)


def draw_ranking(comparison: pd.DataFrame, config: CollabConfig) -> Figure:
    """The models' top-k lists, scored, beside the popularity baseline."""
    return ranking_figure(comparison, config.ranking.k)
