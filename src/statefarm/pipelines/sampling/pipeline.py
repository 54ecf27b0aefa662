"""``sampling``: image_index -> driver_folds, one ``fold_<k>.driver_split`` per fold, sample."""

from collections.abc import Sequence
from functools import partial, update_wrapper

from kedro.pipeline import Pipeline, node, pipeline

from statefarm.pipelines.sampling.nodes import assign_folds, make_sample, split_by_driver


def create_pipeline(folds: Sequence[int] = (0,), **kwargs) -> Pipeline:
    """Assign drivers to folds, split each fold in ``folds``; the sample comes from the first."""
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
            namespace=f"fold_{fold}",
            inputs={"image_index", "driver_folds"},
        )
        for fold in folds
    ]
    return pipeline(
        [
            node(
                assign_folds,
                inputs=["image_index", "params:split", "params:seed"],
                outputs="driver_folds",
                name="assign_folds",
            ),
            *per_fold,
            node(
                make_sample,
                inputs=["image_index", f"fold_{folds[0]}.driver_split", "params:sample", "params:seed"],
                outputs="sample",
                name="make_sample",
            ),
        ]
    )
