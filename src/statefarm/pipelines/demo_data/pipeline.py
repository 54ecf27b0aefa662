"""``demo_data``: parameters -> a generated dataset in Kaggle's layout."""

from kedro.pipeline import Pipeline, node, pipeline

from statefarm.pipelines.demo_data.nodes import generate_demo_dataset


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                generate_demo_dataset,
                inputs=["params:demo_data", "params:seed"],
                outputs=["demo_images", "demo_driver_imgs_list", "demo_sample_submission"],
                name="generate_demo_dataset",
            )
        ]
    )
