"""``sampling``: image_index -> driver_folds, one ``fold_<k>.driver_split`` per fold, sample."""

from collections.abc import Sequence
from functools import partial, update_wrapper

from kedro.pipeline import Pipeline, node, pipeline

from statefarm.pipelines import names
from statefarm.pipelines.sampling.nodes import assign_folds, split_by_driver


def create_pipeline(folds: Sequence[int] = (0,), **kwargs) -> Pipeline:
    """Assign drivers to folds and draw the sample (from the first fold), then split each fold in ``folds``."""
    per_fold = [
        pipeline(
            [
                node(
                    update_wrapper(partial(split_by_driver, fold=fold), split_by_driver),
                    inputs=["image_index", "driver_folds"],
                    outputs="driver_split",
                    name="split_by_driver",
                )
            ],
            namespace=names.fold(fold),
            inputs={"image_index", "driver_folds"},
        )
        for fold in folds
    ]
    return pipeline(
        [
            node(
                assign_folds,
                inputs=["image_index", "params:split", "params:sample", "params:seed"],
                outputs=["driver_folds", "sample"],
                name="assign_folds",
            ),
            *per_fold,
        ]
    )
