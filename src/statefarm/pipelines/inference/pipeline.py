"""``inference``: a fold model + image_cache -> its test predictions (namespaced like training)."""

from kedro.pipeline import Pipeline, node, pipeline

from statefarm.pipelines.inference.nodes import predict_test_images


def create_pipeline(namespace: str = "baseline.fold_0", **kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                predict_test_images,
                inputs=["model", "image_cache", "image_index", "params:inference", "params:seed"],
                outputs="test_logits",
                name="predict_test_images",
            ),
        ],
        namespace=namespace,
        inputs={"image_cache", "image_index"},
        parameters={"params:inference", "params:seed"},
    )
