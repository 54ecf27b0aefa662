"""``lr_find``: image_cache + driver_folds -> lr_sweep (loss against learning rate), its suggestion and plot.

Not in the whole chain: run it before choosing ``optimizer.lr`` (``kedro run --pipelines=lr_find``).
"""

from kedro.pipeline import Pipeline, node, pipeline

from statefarm.pipelines.lr_find.nodes import find_learning_rate, plot_lr_sweep, suggest_learning_rate


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                find_learning_rate,
                inputs=[
                    "image_cache",
                    "image_index",
                    "driver_folds",
                    "tuned_augmentations",
                    "tuned_regularization",
                    "params:lr_find",
                    "params:model",
                    "params:optimizer",
                    "params:scheduler",
                    "params:annealer",
                    "params:training",
                    "params:augment",
                    "params:runtime",
                    "params:seed",
                ],  # fmt: skip
                outputs="lr_sweep",
                name="find_learning_rate",
            ),
            node(suggest_learning_rate, ["lr_sweep", "params:optimizer"], "lr_suggestion", name="suggest_lr"),
            node(plot_lr_sweep, ["lr_sweep", "params:optimizer", "params:model"], "lr_sweep_plot", name="plot_lr"),
        ]
    )
