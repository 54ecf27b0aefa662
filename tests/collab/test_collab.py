"""Collaborative filtering: the checks on MovieLens files, the splits, the models, the pipeline."""

import shutil

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from kedro.framework.session import KedroSession

from statefarm.collab.models import (
    CollabModelConfig,
    CollabTrainingConfig,
    DotProduct,
    RatingScale,
    RatingTensors,
    create_collab_model,
    fit_collab,
    load_collab_model,
    predict_rows,
)
from statefarm.collab.ratings import IdIndex, RatingsError, check_movies, check_ratings, split_ratings
from statefarm.collab.reports import movie_bias_figure
from statefarm.modeling.optim import OptimizerConfig, SchedulerConfig
from statefarm.pipelines.collab.nodes import (
    CollabConfig,
    compare_models,
    predict_requested,
    recommend,
    train_final_model,
    validate_ratings,
)
from tests.conftest import REPO_ROOT, SHARED_MOVIELENS, copy_project

BASE_PARAMETERS = yaml.safe_load((REPO_ROOT / "conf" / "base" / "parameters_collab.yml").read_text())["collab"]


def planted_ratings(users: int = 120, movies: int = 90, rank: int = 3, share: float = 0.5, seed: int = 0):
    """Ratings made from a planted rank-``rank`` structure plus biases, a ``share`` of all pairs observed."""
    rng = np.random.default_rng(seed)
    user_factors, movie_factors = rng.normal(size=(users, rank)), rng.normal(size=(movies, rank))
    scores = user_factors @ movie_factors.T * 0.6 + rng.normal(0, 0.3, (users, 1)) + rng.normal(0, 0.3, (1, movies))
    observed = np.argwhere(rng.random((users, movies)) < share)
    stars = np.clip(np.round((3.0 + scores[observed[:, 0], observed[:, 1]]) * 2) / 2, 0.5, 5.0)
    return pd.DataFrame(
        {
            "userId": observed[:, 0] + 1,
            "movieId": observed[:, 1] * 10 + 7,
            "rating": stars.astype(np.float32),
            "timestamp": rng.integers(10**9, 2 * 10**9, len(observed)),
        }
    )


def small_config(**overrides) -> CollabConfig:
    """conf/base's collab parameters, trained long enough to fit the small planted table."""
    config = {**BASE_PARAMETERS, "training": {"epochs": 30, "batch_size": 256}, "min_ratings": 5, "top_n": 3}
    config["optimizer"] = {**config["optimizer"], "lr": 2.0e-2, "weight_decay": 0.05}
    config["models"] = {
        "bias": config["models"]["bias"],
        "dot": {**config["models"]["dot"], "factors": 8},
        "dot_bias": {**config["models"]["dot_bias"], "factors": 8},
        "neural": {
            **config["models"]["neural"],
            "factors": 8,
            "hidden": 64,
            "dropout": 0.0,
            "lr": 5e-2,
            "weight_decay": 0,
        },
    }
    config["svd"] = {**config["svd"], "n_factors": 8, "n_epochs": 30}
    return CollabConfig.model_validate(config | overrides)


def test_each_model_recovers_a_planted_low_rank_structure():
    comparison, history, metrics = compare_models(planted_ratings(), small_config(splits=["random"]), seed=0)
    scores = comparison.set_index("model")
    rmse = scores["rmse"].dropna()
    assert set(rmse.index) == {"global_mean", "bias", "dot", "dot_bias", "neural", "ensemble", "surprise_svd"}
    ndcg = scores["ndcg_at_10"].dropna()  # top-10 lists judged on the held-out ratings of 4 stars or more
    assert set(ndcg.index) == {
        "popularity", "bias", "dot", "dot_bias", "neural", "ensemble", "surprise_svd", "implicit_als",
    }  # fmt: skip
    assert np.isnan(scores.at["implicit_als", "rmse"])  # it ranks, it predicts no ratings
    assert ndcg["dot_bias"] > ndcg["popularity"] and ndcg["ensemble"] > ndcg["popularity"], comparison
    assert metrics["random.popularity.ndcg_at_10"]["value"] == pytest.approx(ndcg["popularity"])
    for model in ("dot", "dot_bias", "neural", "ensemble"):
        assert rmse[model] < 0.6 * rmse["global_mean"], comparison
    assert rmse["dot_bias"] < rmse["bias"]  # the factors carry what the biases cannot
    assert set(history["model"]) == {"bias", "dot", "dot_bias", "neural"}
    assert list(history.loc[history["model"] == "dot", "epoch"]) == list(range(30))
    assert metrics["random.dot_bias.rmse"]["value"] == pytest.approx(rmse["dot_bias"])


def _csv_error(tmp_path, frame: pd.DataFrame) -> str:
    path = tmp_path / "ratings.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(RatingsError) as error:
        check_ratings(pd.read_csv(path))
    return str(error.value)


def test_bad_ratings_stop_with_the_file_line_and_problem(tmp_path):
    good = planted_ratings(users=5, movies=5, share=1.0)
    assert "missing column(s) ['timestamp']" in _csv_error(tmp_path, good.drop(columns="timestamp"))
    outside = good.copy()
    outside.loc[3, "rating"] = 5.5
    assert _csv_error(tmp_path, outside) == "ratings.csv: rating must be a number from 0.5 to 5.0, at line 5 (5.5)"
    repeated = pd.concat([good, good.iloc[[2]]], ignore_index=True)
    assert f"rated more than once, at line {len(good) + 2}" in _csv_error(tmp_path, repeated)
    text_id = good.astype({"userId": object})
    text_id.loc[7, "userId"] = "u12"
    assert _csv_error(tmp_path, text_id) == "ratings.csv: userId must be an integer, at line 9 ('u12')"
    fractional = good.astype({"movieId": float})
    fractional.loc[0, "movieId"] = 1.5
    assert "movieId must be an integer, at line 2 (1.5)" in _csv_error(tmp_path, fractional)
    with pytest.raises(RatingsError, match=r"movies.csv: a movieId is listed more than once, at line 3"):
        check_movies(pd.DataFrame({"movieId": [1, 1], "title": ["A", "A again"]}))


def test_the_time_split_holds_out_each_users_latest_ratings():
    ratings = check_ratings(planted_ratings())
    train, valid = split_ratings(ratings, "time", 0.2, seed=0)
    assert len(train) + len(valid) == len(ratings)
    last_kept = train.groupby("userId")["timestamp"].max()
    first_held = valid.groupby("userId")["timestamp"].min()
    assert (first_held >= last_kept.reindex(first_held.index)).all()
    held_share = valid.groupby("userId").size() / ratings.groupby("userId").size()
    assert held_share.dropna().between(0.1, 0.2).all()
    random_train, random_valid = split_ratings(ratings, "random", 0.2, seed=0)
    assert 0.15 < len(random_valid) / len(ratings) < 0.25
    assert random_valid.equals(split_ratings(ratings, "random", 0.2, seed=0)[1])  # seeded


def _trained(architecture: str, ratings: pd.DataFrame):
    index, mean = IdIndex.from_ratings(ratings), float(ratings["rating"].mean())
    model = create_collab_model(CollabModelConfig(architecture=architecture, factors=4), index, (0.0, 5.5), mean)
    fit_collab(
        model,
        RatingTensors.from_frame(ratings, index),
        None,
        CollabTrainingConfig(epochs=3, batch_size=256),
        OptimizerConfig(lr=1e-2),
        SchedulerConfig(),
        seed=0,
    )
    return model, index, mean


def test_unseen_users_and_movies_are_answered_from_the_biases_or_the_mean():
    ratings = check_ratings(planted_ratings())
    model, index, mean = _trained("dot", ratings)
    known_user, known_movie = torch.tensor([1]), torch.tensor([1])
    unseen = torch.tensor([0])
    bias_only = model.scale(model.offset + model.movie_bias(known_movie).squeeze(1))
    assert predict_rows(model, unseen, known_movie, mean) == pytest.approx(bias_only.item(), abs=1e-6)
    both_unseen = predict_rows(model, unseen, unseen, mean).item()
    assert both_unseen == pytest.approx(model.scale(model.offset).item(), abs=1e-6)
    assert abs(both_unseen - mean) < 0.3  # the offset is the typical rating
    assert predict_rows(model, known_user, known_movie, mean) != predict_rows(model, unseen, known_movie, mean)

    net, _, _ = _trained("neural", ratings)
    assert predict_rows(net, torch.tensor([0, 1]), torch.tensor([1, 0]), mean).tolist() == pytest.approx([mean] * 2)


def test_requested_pairs_all_get_a_rating_and_unseen_ones_are_counted():
    ratings = check_ratings(planted_ratings())
    checkpoint = train_final_model(ratings, small_config(), seed=0)
    requested = pd.DataFrame({"userId": [1, 2, 999, 1], "movieId": [7, 17, 7, 123456]})
    movies = pd.DataFrame({"movieId": [7], "title": ["film"]})
    _, _, pairs = validate_ratings(planted_ratings(), movies, requested)
    predictions, metrics = predict_requested(checkpoint, pairs)
    assert list(predictions.columns) == ["userId", "movieId", "rating"]
    assert predictions[["userId", "movieId"]].equals(requested)
    assert predictions["rating"].between(0.5, 5.0).all() and predictions["rating"].notna().all()
    assert metrics["predictions.unseen_users"]["value"] == 1 and metrics["predictions.unseen_movies"]["value"] == 1
    _, _, no_pairs = validate_ratings(planted_ratings(), movies, None)
    nothing, _ = predict_requested(checkpoint, no_pairs)
    assert nothing.empty and list(nothing.columns) == ["userId", "movieId", "rating"]


@pytest.mark.parametrize(
    ("user", "message"),
    [
        ("x", r"to_predict.csv: userId must be an integer, at line 3 \('x'\)"),
        # Past int64 it would wrap to -9223372036854775808; past 2**53 two ids could merge as floats.
        (99999999999999999999, r"at most 2\*\*53 in size, at line 3 \(99999999999999999999\)"),
        (2**53 + 1, r"at most 2\*\*53 in size, at line 3 \(9007199254740993\)"),
    ],
)
def test_a_bad_requested_id_is_named_before_any_training(tmp_path, user, message):
    path = tmp_path / "to_predict.csv"
    path.write_text(f"userId,movieId\n1,7\n{user},7\n")
    movies = pd.DataFrame({"movieId": [7], "title": ["film"]})
    with pytest.raises(RatingsError, match=message):
        validate_ratings(planted_ratings(), movies, pd.read_csv(path))


def test_recommendations_are_the_best_unrated_popular_movies():
    ratings = check_ratings(planted_ratings())
    config = small_config()
    checkpoint = train_final_model(ratings, config, seed=0)
    movies = pd.DataFrame({"movieId": np.sort(ratings["movieId"].unique())}).assign(
        title=lambda m: "film " + m["movieId"].astype(str)
    )
    table = recommend(checkpoint, ratings, movies, config, chunk=7)  # chunks cut through the users
    assert list(table.columns) == ["userId", "rank", "movieId", "title", "predicted_rating"]
    assert (table.groupby("userId").size() == 3).all() and table["userId"].nunique() == ratings["userId"].nunique()
    assert table.merge(ratings, on=["userId", "movieId"]).empty  # nothing the user already rated
    assert (table.groupby("userId")["predicted_rating"].diff().dropna() <= 0).all()
    model, index, mean = load_collab_model(checkpoint)
    user = table["userId"].iloc[0]
    unrated = sorted(set(ratings["movieId"]) - set(ratings.loc[ratings["userId"] == user, "movieId"]))
    users, rows = index.rows(pd.DataFrame({"userId": [user] * len(unrated), "movieId": unrated}))
    scores = predict_rows(model, torch.from_numpy(users), torch.from_numpy(rows), mean, clip=False).numpy()
    assert table.loc[table["userId"] == user, "movieId"].tolist() == [unrated[i] for i in np.argsort(-scores)[:3]]


@pytest.mark.slow
def test_collab_pipeline_runs_on_a_slice_of_movielens(tmp_path, monkeypatch):
    if not (SHARED_MOVIELENS / "ratings.csv").is_file():
        pytest.skip(f"MovieLens not found at {SHARED_MOVIELENS}")
    data = tmp_path / "ml-slice"
    data.mkdir()
    ratings = pd.read_csv(SHARED_MOVIELENS / "ratings.csv")
    ratings[ratings["userId"] <= 60].to_csv(data / "ratings.csv", index=False)
    for name in ("movies.csv", "README.txt"):
        shutil.copy(SHARED_MOVIELENS / name, data / name)
    pd.DataFrame({"userId": [1, 2, 100000], "movieId": [1, 50, 1]}).to_csv(data / "to_predict.csv", index=False)
    project = copy_project(tmp_path / "project", monkeypatch)
    (project / "conf" / "local" / "globals.yml").write_text(f"movielens_data: {data}\n")
    params = {"collab": {"training": {"epochs": 2}, "svd": {"n_epochs": 5}}}
    with KedroSession.create(project_path=project, runtime_params=params) as session:
        session.run(pipeline_names=["collab"])
    while mlflow.active_run() is not None:
        mlflow.end_run()

    reporting = project / "data" / "08_reporting" / "movielens"
    comparison = pd.read_csv(reporting / "collab_comparison.csv")
    assert sorted(set(comparison["split"])) == ["random", "time"]
    assert (
        comparison.groupby("split")["rmse"].min()
        < comparison[comparison["model"] == "global_mean"].set_index("split")["rmse"]
    ).all()
    for picture in ("movie_biases", "movie_pca", "learning_curves"):
        assert (reporting / f"{picture}.png").stat().st_size > 10_000
    output = project / "data" / "07_model_output" / "movielens"
    predictions = pd.read_csv(output / "predictions.csv")
    assert predictions[["userId", "movieId"]].values.tolist() == [[1, 1], [2, 50], [100000, 1]]
    assert predictions["rating"].between(0.5, 5).all()
    recommendations = pd.read_csv(output / "recommendations.csv")
    assert recommendations["userId"].nunique() == 60 and recommendations["title"].notna().all()

    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}")  # not set_tracking_uri: global state
    [run] = client.search_runs([client.get_experiment_by_name("statefarm-collab").experiment_id])  # its own
    statefarm = client.get_experiment_by_name("statefarm")  # State Farm's experiment lists State Farm runs only
    assert statefarm is None or not client.search_runs([statefarm.experiment_id])
    history = client.get_metric_history(run.info.run_id, "collab.time.dot_bias.valid_rmse")
    assert [metric.step for metric in history] == [0, 1]
    assert "collab.random.surprise_svd.rmse" in run.data.metrics
    assert run.data.params["collab.final_model"] == "dot_bias"
    artifacts = {artifact.path for artifact in client.list_artifacts(run.info.run_id, "collab")}
    assert "collab/collab_comparison.csv" in artifacts and "collab/movie_pca.png" in artifacts


def test_a_bad_to_predict_row_stops_the_pipeline_before_training(tmp_path, monkeypatch):
    data = tmp_path / "ratings"
    data.mkdir()
    ratings = planted_ratings()
    ratings.to_csv(data / "ratings.csv", index=False)
    movies = pd.DataFrame({"movieId": np.sort(ratings["movieId"].unique())}).assign(title="film")
    movies.to_csv(data / "movies.csv", index=False)
    (data / "to_predict.csv").write_text("userId,movieId\n1,7\n99999999999999999999,7\n")
    project = copy_project(tmp_path / "project", monkeypatch)
    (project / "conf" / "local" / "globals.yml").write_text(f"movielens_data: {data}\n")
    with pytest.raises(RatingsError, match=r"to_predict.csv: userId .* line 3"):
        with KedroSession.create(project_path=project) as session:
            session.run(pipeline_names=["collab"])
    assert not list((project / "data").rglob("*.pt")) and not list((project / "data").rglob("*.csv"))


def test_the_bias_plot_speaks_in_stars():
    scale = RatingScale(0.0, 5.5)
    model = DotProduct(1, 4, 2, True, scale, mean=3.5)
    with torch.no_grad():
        model.movie_bias.weight[1:, 0] = torch.tensor([1.0, 0.0, -1.0])
    figure = movie_bias_figure(model, np.array([1, 2, 3]), np.array(["loved", "plain", "hated"]), "dot_bias", 0)
    lowest, highest = figure.axes
    loved = 5.5 / (1 + np.exp(-(scale.logit(3.5) + 1.0))) - 3.5  # what +1 on the logit adds to a 3.5-star rating
    assert highest.patches[0].get_width() == pytest.approx(loved, rel=1e-5) and 0.5 < loved < 1.5
    assert lowest.patches[0].get_width() < 0 and highest.get_xlabel() == "stars added to a typical rating (3.50)"
