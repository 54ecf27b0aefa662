"""``data_prep``: raw Kaggle files -> image_index, rejected_images, image_cache."""

from kedro.pipeline import Pipeline, node, pipeline

from statefarm.pipelines.data_prep.nodes import index_images, plan_image_cache


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                index_images,
                inputs=["raw_images", "driver_imgs_list", "sample_submission", "params:num_workers"],
                outputs=["image_index", "rejected_images"],
                name="index_images",
            ),
            node(
                plan_image_cache,
                inputs=["image_index", "params:image_cache", "params:num_workers"],
                outputs="image_cache",
                name="cache_images",
            ),
        ]
    )
