"""``inference``: a fold model + image_cache -> its test predictions, and each test and validation
image's nearest neighbours, in its feature space or in pixels (namespaced like training)."""

from kedro.pipeline import Pipeline, node, pipeline

from statefarm.pipelines.inference.nodes import (
    find_test_neighbours_in_pixels,
    find_valid_neighbours,
    predict_test_images,
)


def create_shared_pipeline() -> Pipeline:
    """What every fold model's inference shares: the test images' neighbours in pixels."""
    return pipeline(
        [
            node(
                find_test_neighbours_in_pixels,
                inputs=["image_cache", "image_index", "params:inference"],
                outputs="test_pixel_neighbours",
                name="find_test_neighbours_in_pixels",
            )
        ]
    )


def create_pipeline(namespace: str = "baseline.fold_0", **kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                predict_test_images,
                inputs=[
                    "model",
                    "valid_predictions",
                    "image_cache",
                    "image_index",
                    "test_pixel_neighbours",
                    "params:inference",
                    "params:runtime",
                    "params:seed",
                ],
                outputs=["test_logits", "test_neighbours"],
                name="predict_test_images",
            ),
            node(
                find_valid_neighbours,
                inputs=[
                    "model",
                    "image_cache",
                    "valid_predictions",
                    "test_neighbours",
                    "params:inference",
                    "params:runtime",
                    "params:seed",
                ],
                outputs="valid_neighbours",
                name="find_valid_neighbours",
            ),
        ],
        namespace=namespace,
        inputs={"image_cache", "image_index", "test_pixel_neighbours"},
        parameters={"params:inference", "params:runtime", "params:seed"},
    )
