"""``inference``: model + image_cache -> calibration, test_predictions (namespaced like training)."""

from kedro.pipeline import Pipeline, node, pipeline

from statefarm.pipelines.inference.nodes import calibrate, predict_test_images, track_calibration


def create_pipeline(namespace: str = "baseline", **kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                calibrate,
                inputs=["valid_predictions", "params:inference"],
                outputs="calibration",
                name="calibrate",
            ),
            node(track_calibration, inputs="calibration", outputs="calibration_metrics", name="track_calibration"),
            node(
                predict_test_images,
                inputs=["model", "image_cache", "image_index", "calibration", "params:inference", "params:seed"],
                outputs="test_predictions",
                name="predict_test_images",
            ),
        ],
        namespace=namespace,
        inputs={"image_cache", "image_index"},
        parameters={"params:inference", "params:seed"},
    )
