"""Collaborative filtering, as the lesson builds it: embeddings, their dot product, biases, a neural net.

Each model maps (user row, movie row) to a rating through a sigmoid scaled to
``rating_range``, a little wider than the 0.5-5 stars so both ends are reachable.
Training runs over whole tensors in large shuffled batches (no Python loop per rating);
the optimizer and schedule are the image pipeline's (timm's, by name).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field
from torch import nn

from statefarm.collab.ratings import RATING_SCALE, IdIndex
from statefarm.config import Params
from statefarm.modeling.optim import OptimizerConfig, SchedulerConfig, create_optimizer, create_scheduler


class CollabModelConfig(Params):
    """One model: ``dot`` (embeddings' dot product, with or without biases) or ``neural``."""

    architecture: Literal["dot", "neural"] = "dot"
    factors: int = Field(50, ge=0, description="embedding size; 0 with biases: the bias-only baseline")
    biases: bool = Field(True, description="dot: add a bias per user and per movie")
    hidden: int = Field(100, ge=1, description="neural: units of the hidden layer")
    dropout: float = Field(0.0, ge=0, lt=1, description="neural: on the embeddings and the hidden layer")
    lr: float | None = Field(None, gt=0, description="overrides optimizer.lr for this model")
    weight_decay: float | None = Field(None, ge=0, description="overrides optimizer.weight_decay for this model")


class CollabTrainingConfig(Params):
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(1024, ge=1)


class RatingScale(nn.Module):
    """A sigmoid stretched over ``(low, high)``; ``logit`` gives the input that predicts ``rating``."""

    def __init__(self, low: float, high: float) -> None:
        super().__init__()
        self.low, self.high = low, high

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x) * (self.high - self.low) + self.low

    def logit(self, rating: float) -> float:
        share = min(max((rating - self.low) / (self.high - self.low), 1e-3), 1 - 1e-3)
        return math.log(share / (1 - share))


def _factors(rows: int, factors: int) -> nn.Embedding:
    """Small random factors; row 0, the unseen user or movie, at zero."""
    table = nn.Embedding(rows, factors)
    nn.init.normal_(table.weight, std=0.01)
    with torch.no_grad():
        table.weight[0] = 0
    return table


class DotProduct(nn.Module):
    """Rating = scale(user · movie + user bias + movie bias + global offset).

    Row 0 of every table stands for an unseen user or movie (see ``IdIndex``): it starts
    at zero and never gets a gradient, so an unseen one is answered from the biases.
    """

    answers_unseen = True

    def __init__(self, n_users: int, n_movies: int, factors: int, biases: bool, scale: RatingScale, mean: float):
        super().__init__()
        self.scale = scale
        self.user_factors = _factors(n_users, factors)
        self.movie_factors = _factors(n_movies, factors)
        self.user_bias = nn.Embedding(n_users, 1) if biases else None
        self.movie_bias = nn.Embedding(n_movies, 1) if biases else None
        self.offset = nn.Parameter(torch.tensor(scale.logit(mean)))
        for table in (self.user_bias, self.movie_bias):
            if table is not None:
                nn.init.zeros_(table.weight)

    def forward(self, users: torch.Tensor, movies: torch.Tensor) -> torch.Tensor:
        x = (self.user_factors(users) * self.movie_factors(movies)).sum(1) + self.offset
        if self.user_bias is not None:
            x = x + self.user_bias(users).squeeze(1) + self.movie_bias(movies).squeeze(1)
        return self.scale(x)


class EmbeddingNet(nn.Module):
    """Rating = scale(MLP([user embedding, movie embedding])): one hidden layer, dropout on both.

    It has no bias to fall back on, so an unseen user or movie is answered with the mean rating.
    """

    answers_unseen = False

    def __init__(self, n_users: int, n_movies: int, config: CollabModelConfig, scale: RatingScale, mean: float):
        super().__init__()
        self.scale = scale
        self.user_factors = _factors(n_users, config.factors)
        self.movie_factors = _factors(n_movies, config.factors)
        self.head = nn.Sequential(
            nn.Dropout(config.dropout),
            nn.Linear(2 * config.factors, config.hidden),
            nn.ReLU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden, 1),
        )
        nn.init.constant_(self.head[-1].bias, scale.logit(mean))

    def forward(self, users: torch.Tensor, movies: torch.Tensor) -> torch.Tensor:
        features = torch.cat([self.user_factors(users), self.movie_factors(movies)], dim=1)
        return self.scale(self.head(features).squeeze(1))


def create_collab_model(
    config: CollabModelConfig, index: IdIndex, rating_range: tuple[float, float], mean: float
) -> nn.Module:
    """The model ``config`` describes, sized for ``index``, starting at the ``mean`` rating."""
    scale = RatingScale(*rating_range)
    if config.architecture == "neural":
        if config.factors == 0:
            raise ValueError("collab.models: a neural model needs factors > 0")
        return EmbeddingNet(index.n_users, index.n_movies, config, scale, mean)
    if config.factors == 0 and not config.biases:
        raise ValueError("collab.models: a dot model needs factors > 0 or biases: true")
    return DotProduct(index.n_users, index.n_movies, config.factors, config.biases, scale, mean)


@dataclass(frozen=True)
class RatingTensors:
    """Ratings as embedding rows and targets, ready to index in batches."""

    users: torch.Tensor
    movies: torch.Tensor
    ratings: torch.Tensor

    @classmethod
    def from_frame(cls, ratings: pd.DataFrame, index: IdIndex) -> RatingTensors:
        users, movies = index.rows(ratings)
        return cls(
            torch.from_numpy(users.astype(np.int64)),
            torch.from_numpy(movies.astype(np.int64)),
            torch.tensor(ratings["rating"].to_numpy(np.float32)),
        )

    def __len__(self) -> int:
        return len(self.ratings)


@dataclass(frozen=True)
class EncodedRatings:
    """Ratings to train on (and, optionally, held out), encoded once for every model trained on them."""

    index: IdIndex
    mean: float  # of the training ratings
    train: RatingTensors
    valid: RatingTensors | None

    @classmethod
    def encode(cls, train: pd.DataFrame, valid: pd.DataFrame | None = None) -> EncodedRatings:
        index = IdIndex.from_ratings(train)
        return cls(
            index,
            float(train["rating"].mean()),
            RatingTensors.from_frame(train, index),
            None if valid is None else RatingTensors.from_frame(valid, index),
        )


def predict_rows(
    model: nn.Module, users: torch.Tensor, movies: torch.Tensor, mean: float, clip: bool = True
) -> torch.Tensor:
    """Predicted ratings; where the model cannot answer an unseen user or movie, ``mean``.

    Clipped to the star scale unless ``clip`` is false: ranking needs the unclipped
    scores, as many may pass 5.
    """
    model.eval()
    with torch.no_grad():
        predicted = model(users, movies)
    if not model.answers_unseen:
        predicted = torch.where((users == 0) | (movies == 0), torch.tensor(mean), predicted)
    return predicted.clamp(*RATING_SCALE) if clip else predicted


def rmse(predicted: torch.Tensor | np.ndarray, actual: torch.Tensor | np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(predicted, np.float64) - np.asarray(actual, np.float64)) ** 2)))


def fit_collab(
    model: nn.Module,
    train: RatingTensors,
    valid: RatingTensors | None,
    training: CollabTrainingConfig,
    optimizer: OptimizerConfig,
    scheduler: SchedulerConfig,
    seed: int,
    on_epoch: Callable[[dict[str, float], int], None] = lambda metrics, epoch: None,
) -> pd.DataFrame:
    """Train ``model`` on ``train`` with mean squared error; return one row per epoch.

    Each row holds ``train_rmse`` (over the epoch's batches, dropout on), ``valid_rmse``
    (after the epoch, when ``valid`` is given; never used to stop or choose), ``lr`` and
    the elapsed ``seconds``. ``on_epoch(metrics, epoch)`` sees each row as it is made.
    """
    generator = torch.Generator().manual_seed(seed)
    steps_per_epoch = math.ceil(len(train) / training.batch_size)
    opt = create_optimizer(model, optimizer)
    sched = create_scheduler(opt, scheduler, training.epochs, steps_per_epoch)
    mean = float(train.ratings.mean())
    history, start = [], time.perf_counter()
    for epoch in range(training.epochs):
        model.train()
        order = torch.randperm(len(train), generator=generator)
        squared = torch.zeros(())
        for step, batch in enumerate(order.split(training.batch_size)):
            error = model(train.users[batch], train.movies[batch]) - train.ratings[batch]
            loss = error.pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step_update(num_updates=epoch * steps_per_epoch + step + 1)
            squared += loss.detach() * len(batch)
        row = {"epoch": epoch, "train_rmse": math.sqrt(float(squared) / len(train))}
        if not math.isfinite(row["train_rmse"]):
            raise FloatingPointError(f"collab training diverged at epoch {epoch + 1}: lower optimizer.lr")
        if valid is not None:
            row["valid_rmse"] = rmse(predict_rows(model, valid.users, valid.movies, mean), valid.ratings)
        row |= {"lr": opt.param_groups[0]["lr"], "seconds": time.perf_counter() - start}
        on_epoch({k: v for k, v in row.items() if k != "epoch"}, epoch)
        history.append(row)
    return pd.DataFrame(history)


def collab_checkpoint(
    model: nn.Module, config: CollabModelConfig, index: IdIndex, rating_range: tuple[float, float], mean: float
) -> dict:
    """Everything needed to rebuild ``model`` and map ids to its rows, as tensors and plain values."""
    return {
        "state_dict": model.state_dict(),
        "config": config.model_dump(),
        "rating_range": list(rating_range),
        "mean": mean,
        "users": torch.tensor(index.users.to_numpy(np.int64)),
        "movies": torch.tensor(index.movies.to_numpy(np.int64)),
    }


def load_collab_model(checkpoint: dict) -> tuple[nn.Module, IdIndex, float]:
    """The model of ``collab_checkpoint``, its id index and the mean training rating."""
    index = IdIndex(pd.Index(checkpoint["users"].numpy()), pd.Index(checkpoint["movies"].numpy()))
    config = CollabModelConfig(**checkpoint["config"])
    model = create_collab_model(config, index, tuple(checkpoint["rating_range"]), checkpoint["mean"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval(), index, checkpoint["mean"]
