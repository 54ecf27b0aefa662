"""``data_prep``: raw Kaggle files -> image_cache, then image_index and rejected_images as the decoder saw them."""

from kedro.pipeline import Pipeline, node, pipeline

from statefarm.pipelines.data_prep.nodes import index_images, plan_image_cache, reject_undecodable


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                index_images,
                inputs=["raw_images", "driver_imgs_list", "sample_submission", "params:num_workers"],
                outputs=["checked_images", "file_rejections"],
                name="index_images",
            ),
            node(
                plan_image_cache,
                inputs=["checked_images", "params:image_cache", "params:num_workers"],
                outputs="image_cache",
                name="cache_images",
            ),
            node(
                reject_undecodable,
                inputs=["checked_images", "file_rejections", "image_cache"],
                outputs=["image_index", "rejected_images"],
                name="reject_undecodable",
            ),
        ]
    )
