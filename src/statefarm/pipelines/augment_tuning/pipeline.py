"""``augment_tuning``: sample + image_cache -> augment_scan, tuned_augmentations (read by training)."""

from kedro.pipeline import Pipeline, node, pipeline

from statefarm.pipelines.augment_tuning.nodes import (
    plot_augment_scan,
    record_augment_grid,
    track_augment_scan,
    tune_augmentations,
)


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                record_augment_grid, inputs="params:augment_tuning", outputs="augment_grid", name="record_augment_grid"
            ),
            node(
                tune_augmentations,
                inputs=[
                    "image_cache",
                    "sample",
                    "params:augment_tuning",
                    "params:model",
                    "params:optimizer",
                    "params:scheduler",
                    "params:runtime",
                    "params:seed",
                    "params:submission",
                    "params:augment",
                ],  # fmt: skip
                outputs=["augment_scan", "tuned_augmentations"],
                name="tune_augmentations",
            ),
            node(
                track_augment_scan,
                inputs="tuned_augmentations",
                outputs="augment_scan_metrics",
                name="track_augment_scan",
            ),
            node(
                plot_augment_scan,
                inputs=["augment_scan", "tuned_augmentations"],
                outputs="augment_scan_plot",
                name="plot_augment_scan",
            ),
        ]
    )
