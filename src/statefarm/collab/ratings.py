"""MovieLens ratings: checked as read, split for evaluation, ids mapped to embedding rows.

The files follow GroupLens' layout (``ratings.csv``: ``userId,movieId,rating,timestamp``;
``movies.csv``: ``movieId,title,genres``). Errors name the file, the line (the header is
line 1) and the problem, so a damaged download is found without a debugger.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

RATINGS_FILE = "ratings.csv"
MOVIES_FILE = "movies.csv"
RATING_COLUMNS = ("userId", "movieId", "rating", "timestamp")
PAIR_COLUMNS = ("userId", "movieId")
RATING_SCALE = (0.5, 5.0)
SplitMethod = Literal["random", "time"]
_ROWS_SHOWN = 5
# Ids beyond this cannot all be told apart once pandas reads a column as float64, and past
# 2**63 they would wrap in int64: refused, rather than merged or turned negative.
MAX_ID = 2**53


class RatingsError(ValueError):
    """A ratings or movies file that cannot be used as it is."""


def _lines(frame: pd.DataFrame, mask: pd.Series | np.ndarray, column: str) -> str:
    rows = np.flatnonzero(np.asarray(mask))
    values = frame[column].iloc[rows[:_ROWS_SHOWN]].tolist()  # Python values: 5.5, not np.float64(5.5)
    shown = ", ".join(f"line {row + 2} ({value!r})" for row, value in zip(rows, values, strict=False))
    return shown + (f" and {len(rows) - _ROWS_SHOWN} more" if len(rows) > _ROWS_SHOWN else "")


def _integer_ids(frame: pd.DataFrame, column: str, file: str) -> pd.Series:
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() | (values != values.round())
    if bad.any():
        raise RatingsError(f"{file}: {column} must be an integer, at {_lines(frame, bad, column)}")
    too_large = values.abs() > MAX_ID
    if too_large.any():
        raise RatingsError(
            f"{file}: {column} must be an integer of at most 2**53 in size, at {_lines(frame, too_large, column)}"
        )
    return values.astype(np.int64)


def check_pairs(frame: pd.DataFrame, file: str, columns: tuple[str, ...] = PAIR_COLUMNS) -> pd.DataFrame:
    """Check that ``columns`` are present and hold integer ids; return them as ``int64``."""
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise RatingsError(f"{file}: missing column(s) {missing}; the header must hold {list(columns)}")
    return pd.DataFrame({column: _integer_ids(frame, column, file) for column in columns})


def check_ratings(frame: pd.DataFrame, file: str = RATINGS_FILE) -> pd.DataFrame:
    """Validate ratings as read from ``file``; return them typed, in file order.

    Raises:
        RatingsError: On a missing column, a non-integer id or timestamp, a rating outside
            0.5-5, or a (user, movie) pair rated twice, naming the file and lines.
    """
    if frame.empty:
        raise RatingsError(f"{file}: no ratings")
    missing = [column for column in RATING_COLUMNS if column not in frame.columns]
    if missing:
        raise RatingsError(f"{file}: missing column(s) {missing}; the header must hold {list(RATING_COLUMNS)}")
    checked = check_pairs(frame, file, ("userId", "movieId", "timestamp"))
    rating = pd.to_numeric(frame["rating"], errors="coerce")
    low, high = RATING_SCALE
    outside = rating.isna() | (rating < low) | (rating > high)
    if outside.any():
        raise RatingsError(
            f"{file}: rating must be a number from {low} to {high}, at {_lines(frame, outside, 'rating')}"
        )
    checked.insert(2, "rating", rating.astype(np.float32))
    repeated = checked.duplicated(list(PAIR_COLUMNS), keep="first")
    if repeated.any():
        raise RatingsError(
            f"{file}: a (userId, movieId) pair is rated more than once, at {_lines(frame, repeated, 'movieId')}"
        )
    return checked[list(RATING_COLUMNS)]


def check_movies(frame: pd.DataFrame, file: str = MOVIES_FILE) -> pd.DataFrame:
    """Validate ``movies.csv``: integer, unique ``movieId`` and a ``title``; return ``movieId,title``."""
    if "title" not in frame.columns:
        raise RatingsError(f"{file}: missing column(s) ['title']; the header must hold ['movieId', 'title']")
    movies = check_pairs(frame, file, ("movieId",)).assign(title=frame["title"].astype(str))
    repeated = movies["movieId"].duplicated()
    if repeated.any():
        raise RatingsError(f"{file}: a movieId is listed more than once, at {_lines(frame, repeated, 'movieId')}")
    return movies


def split_ratings(
    ratings: pd.DataFrame, method: SplitMethod, valid_fraction: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out ``valid_fraction`` of the ratings; return ``(train, valid)``.

    ``random``: a seeded random share of all ratings (the lesson's split). ``time``: each
    user's latest ratings (ties broken by movie), the honest test of a recommender, which
    must predict a user's next ratings from their past.
    """
    if method == "random":
        held_out = np.random.default_rng(seed).random(len(ratings)) < valid_fraction
    elif method == "time":
        order = ratings.sort_values(["userId", "timestamp", "movieId"], kind="stable")
        rank_from_end = order.groupby("userId").cumcount(ascending=False)
        per_user = order.groupby("userId")["userId"].transform("size")
        held_out = (rank_from_end < np.floor(per_user * valid_fraction)).reindex(ratings.index).to_numpy()
    else:
        raise ValueError(f"unknown split method {method!r}; use random or time")
    return ratings[~held_out].reset_index(drop=True), ratings[held_out].reset_index(drop=True)


@dataclass(frozen=True)
class IdIndex:
    """Embedding rows of the users and movies seen in training; row 0 stands for any unseen one.

    Row 0 is never trained, so its embedding and bias stay at their zero start: an unseen
    user or movie adds nothing, and a prediction for it rests on what is known.
    """

    users: pd.Index
    movies: pd.Index

    @classmethod
    def from_ratings(cls, ratings: pd.DataFrame) -> IdIndex:
        return cls(pd.Index(np.sort(ratings["userId"].unique())), pd.Index(np.sort(ratings["movieId"].unique())))

    @property
    def n_users(self) -> int:
        return len(self.users) + 1

    @property
    def n_movies(self) -> int:
        return len(self.movies) + 1

    def rows(self, pairs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Embedding rows of ``pairs``' users and movies; 0 for the unseen."""
        return self.users.get_indexer(pairs["userId"]) + 1, self.movies.get_indexer(pairs["movieId"]) + 1
