"""``submission``: test_predictions -> a validated Kaggle submission CSV (namespaced like training)."""

from kedro.pipeline import Pipeline, node, pipeline

from statefarm.pipelines.submission.nodes import make_submission


def create_pipeline(namespace: str = "baseline", **kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                make_submission,
                inputs=["test_predictions", "sample_submission", "image_index", "params:submission"],
                outputs="submission",
                name="make_submission",
            )
        ],
        namespace=namespace,
        inputs={"sample_submission", "image_index"},
        parameters={"params:submission"},
    )
