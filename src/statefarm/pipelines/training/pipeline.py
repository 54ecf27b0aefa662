"""``training``: image_cache + driver_split -> model, history, validation predictions and reports.

Built once and namespaced (``baseline`` by default, ``pseudo`` for the retraining
with pseudo-labels) rather than copied; the namespace also prefixes the metrics
the loop logs to MLflow, so both trainings of one run stay apart.
"""

from functools import partial, update_wrapper

from kedro.pipeline import Pipeline, node, pipeline

from statefarm.pipelines.training.nodes import report_training, train_model

SHARED_INPUTS = {"image_cache", "image_index", "driver_split", "tuned_augmentations"}
SHARED_PARAMETERS = {
    "params:model", "params:optimizer", "params:scheduler", "params:annealer", "params:training",
    "params:augment", "params:seed", "params:submission",
}  # fmt: skip


def create_pipeline(namespace: str = "baseline", **kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                update_wrapper(partial(train_model, metrics_prefix=f"{namespace}."), train_model),
                inputs=[
                    "image_cache",
                    "image_index",
                    "driver_split",
                    "checkpoints",
                    "tuned_augmentations",
                    "params:model",
                    "params:optimizer",
                    "params:scheduler",
                    "params:annealer",
                    "params:training",
                    "params:augment",
                    "params:seed",
                    "params:submission",
                ],  # fmt: skip
                outputs=["model", "training_history", "valid_predictions"],
                name="train_model",
            ),
            node(
                report_training,
                inputs=["training_history", "valid_predictions"],
                outputs=["learning_curves", "confusion_matrix", "validation_report"],
                name="report_training",
            ),
        ],
        namespace=namespace,
        inputs=SHARED_INPUTS,
        parameters=SHARED_PARAMETERS,
    )
