"""``submission``: test_predictions -> a validated Kaggle submission CSV (namespaced like training)."""

from functools import partial, update_wrapper

from kedro.pipeline import Pipeline, node, pipeline

from statefarm.pipelines.submission.nodes import make_submission, submit_to_kaggle


def create_pipeline(namespace: str = "baseline", **kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                make_submission,
                inputs=["test_predictions", "sample_submission", "image_index", "params:submission"],
                outputs="submission",
                name="make_submission",
            ),
            node(
                update_wrapper(partial(submit_to_kaggle, namespace=namespace), submit_to_kaggle),
                inputs=["submission", "params:submission"],
                outputs="kaggle_receipt",
                name="submit_to_kaggle",
            ),
        ],
        namespace=namespace,
        inputs={"sample_submission", "image_index"},
        parameters={"params:submission"},
    )
