"""``regularization_tuning``: image_cache + driver_folds -> regularization_scan, tuned_regularization (read by
training). Not in the whole chain: each arm trains every fold; run it on its own."""

from kedro.pipeline import Pipeline, node, pipeline

from statefarm.pipelines.regularization_tuning.nodes import plot_regularization_tuning, tune_regularization


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                tune_regularization,
                inputs=[
                    "image_cache",
                    "image_index",
                    "driver_folds",
                    "tuned_augmentations",
                    "params:regularization_tuning",
                    "params:model",
                    "params:optimizer",
                    "params:scheduler",
                    "params:annealer",
                    "params:training",
                    "params:augment",
                    "params:runtime",
                    "params:seed",
                    "params:submission",
                    "params:inference",
                ],  # fmt: skip
                outputs=["regularization_scan", "tuned_regularization"],
                name="tune_regularization",
            ),
            node(
                plot_regularization_tuning,
                inputs=["regularization_scan", "tuned_regularization"],
                outputs="regularization_scan_plot",
                name="plot_regularization_tuning",
            ),
        ]
    )
