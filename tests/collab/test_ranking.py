import numpy as np
import pandas as pd
import pytest

from statefarm.collab.ranking import (
    NO_MOVIE,
    ImplicitALSConfig,
    RankingConfig,
    implicit_als_scorer,
    judge_top_k,
    popularity_scorer,
    ranking_scores,
    rated_movies,
    top_k,
)
from statefarm.collab.ratings import IdIndex
from statefarm.collab.reports import ranking_figure


def test_ranking_scores_match_hand_computed_values():
    recommended = np.array([[5, 1, 7], [2, 3, 4]])  # k = 3
    relevant = [{1, 9}, {8}]  # user 0 finds movie 1 at rank 2 of its 2 relevant; user 1 finds nothing
    scores = ranking_scores(recommended, relevant, catalogue=10)
    ndcg_user_0 = (1 / np.log2(3)) / (1 / np.log2(2) + 1 / np.log2(3))
    assert scores["precision_at_3"] == pytest.approx((1 / 3 + 0) / 2)
    assert scores["recall_at_3"] == pytest.approx((1 / 2 + 0) / 2)
    assert scores["ndcg_at_3"] == pytest.approx((ndcg_user_0 + 0) / 2)
    assert scores["coverage_at_3"] == pytest.approx(6 / 10)


def _ratings(rows: list[tuple[int, int, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["userId", "movieId", "rating"])


def test_top_k_never_lists_a_movie_rated_in_training_and_ranks_by_score():
    train = _ratings([(1, 10, 4.0), (1, 20, 3.0), (2, 20, 5.0), (2, 30, 1.0), (3, 30, 2.0), (3, 40, 4.0)])
    index = IdIndex.from_ratings(train)
    preference = np.array([4.0, 3.0, 2.0, 1.0])  # movies 10, 20, 30, 40, everyone alike

    def score(users: np.ndarray) -> np.ndarray:
        return np.tile(preference, (len(users), 1))

    users = np.arange(1, index.n_users)
    excluded = rated_movies(index, train)
    lists = top_k(score, users, k=2, rated=excluded, catalogue=np.ones(4, bool))
    movies = index.movies.to_numpy()[lists - 1]
    assert movies.tolist() == [[30, 40], [10, 40], [10, 20]]  # each user's best two among what they did not rate
    rated = train.groupby("userId")["movieId"].agg(set)
    assert all(not set(listed) & rated[user] for user, listed in zip(index.users, movies, strict=True))
    # Out of the catalogue (too few ratings to recommend), movie 10 is never listed; user 2 has one movie left.
    without_10 = top_k(score, users, k=2, rated=excluded, catalogue=np.array([False, True, True, True]))
    assert without_10.tolist() == [[3, 4], [4, NO_MOVIE], [2, NO_MOVIE]]


def test_popularity_lists_the_most_rated_unrated_movies_and_is_judged_on_liked_held_out_ones():
    train = _ratings([(1, 10, 4.0), (2, 10, 5.0), (3, 10, 3.0), (2, 20, 4.0), (3, 20, 4.0), (3, 30, 1.0)])
    valid = _ratings([(1, 20, 5.0), (1, 30, 2.0), (2, 30, 4.5), (9, 10, 5.0)])  # user 9 is unseen: not judged
    index = IdIndex.from_ratings(train)
    scores = judge_top_k(
        {"popularity": popularity_scorer(index, train)}, index, train, valid, RankingConfig(k=1, relevant_rating=4)
    )["popularity"]
    # user 1 gets movie 20 (2 ratings) and liked it; user 2 gets movie 30, the only one left, and liked it.
    assert scores == {"precision_at_1": 1.0, "recall_at_1": 1.0, "ndcg_at_1": 1.0, "coverage_at_1": 2 / 3}


def test_implicit_als_learns_who_watches_what_and_beats_popularity_where_tastes_split():
    rng = np.random.default_rng(0)
    rows = []
    for user in range(1, 61):  # two audiences, each watching movies of its own half only, equally popular
        half = np.arange(1, 21) + 20 * (user % 2)
        rows += [(user, int(movie), 5.0) for movie in rng.choice(half, 12, replace=False)]
    ratings = _ratings(rows)
    valid = ratings.groupby("userId").tail(3)
    train = ratings.drop(valid.index)
    index = IdIndex.from_ratings(train)
    scorers = {
        "popularity": popularity_scorer(index, train),
        "implicit_als": implicit_als_scorer(ImplicitALSConfig(factors=4, iterations=10), index, train, seed=0),
    }
    scores = judge_top_k(scorers, index, train, valid, RankingConfig(k=3, relevant_rating=4))
    assert scores["implicit_als"]["ndcg_at_3"] > scores["popularity"]["ndcg_at_3"] + 0.2, scores
    excluded = rated_movies(index, train)
    lists = top_k(scorers["implicit_als"], np.arange(1, index.n_users), 3, excluded, np.ones(index.n_movies - 1, bool))
    own_half = (index.movies.to_numpy()[lists - 1] - 1) // 20 == (index.users.to_numpy()[:, None] % 2)
    assert own_half.mean() > 0.9  # each audience is shown its own half


def test_the_ranking_plot_draws_each_models_scores_beside_popularity():
    comparison = pd.DataFrame(
        {"split": ["time"] * 3, "model": ["global_mean", "popularity", "dot"], "ndcg_at_10": [np.nan, 0.07, 0.08],
         "precision_at_10": [np.nan, 0.05, 0.06]}
    )  # fmt: skip
    [axes] = ranking_figure(comparison, k=10).axes
    assert [tick.get_text() for tick in axes.get_xticklabels()] == ["popularity", "dot"]  # what has no list is left out
    assert [bar.get_height() for bar in axes.containers[0]] == [0.07, 0.08]
    assert axes.get_lines()[0].get_ydata()[0] == 0.07  # popularity's NDCG, across the panel
