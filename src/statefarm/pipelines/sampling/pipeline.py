"""``sampling``: image_index -> driver_split, sample."""

from kedro.pipeline import Pipeline, node, pipeline

from statefarm.pipelines.sampling.nodes import make_sample, split_by_driver


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                split_by_driver,
                inputs=["image_index", "params:split", "params:seed"],
                outputs="driver_split",
                name="split_by_driver",
            ),
            node(
                make_sample,
                inputs=["image_index", "driver_split", "params:sample", "params:seed"],
                outputs="sample",
                name="make_sample",
            ),
        ]
    )
