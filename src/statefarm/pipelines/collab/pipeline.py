"""``collab``: MovieLens ratings -> a model comparison on held-out ratings -> the chosen model
trained on every rating -> predictions, recommendations and the lesson's pictures."""

from kedro.pipeline import Pipeline, node, pipeline

from statefarm.pipelines.collab.nodes import (
    compare_models,
    draw_model,
    draw_ranking,
    predict_requested,
    recommend,
    train_final_model,
    validate_ratings,
)


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                validate_ratings,
                inputs=["movielens_ratings", "movielens_movies", "movielens_to_predict"],
                outputs=["ratings", "movies", "requested_pairs"],
                name="validate_ratings",
            ),
            node(
                compare_models,
                inputs=["ratings", "params:collab", "params:seed"],
                outputs=["collab_comparison", "collab_history", "collab_metrics"],
                name="compare_collab_models",
            ),
            node(
                train_final_model,
                inputs=["ratings", "params:collab", "params:seed"],
                outputs="collab_model",
                name="train_final_collab_model",
            ),
            node(
                predict_requested,
                inputs=["collab_model", "requested_pairs"],
                outputs=["collab_predictions", "collab_prediction_metrics"],
                name="predict_requested_ratings",
            ),
            node(
                recommend,
                inputs=["collab_model", "ratings", "movies", "params:collab"],
                outputs="collab_recommendations",
                name="recommend_movies",
            ),
            node(
                draw_model,
                inputs=["collab_model", "ratings", "movies", "collab_history", "params:collab"],
                outputs=["collab_movie_biases", "collab_movie_pca", "collab_learning_curves"],
                name="draw_collab_model",
            ),
            node(
                draw_ranking,
                inputs=["collab_comparison", "params:collab"],
                outputs="collab_ranking",
                name="draw_collab_ranking",
            ),
        ]
    )
