"""``training``: image_cache + driver_split -> model, history, validation predictions and reports.

Built once and namespaced (``baseline`` by default, ``pseudo`` for the retraining
with pseudo-labels) rather than copied; the namespace also prefixes the metrics
the loop logs to MLflow, so both trainings of one run stay apart.
"""

from functools import partial, update_wrapper

from kedro.pipeline import Pipeline, node, pipeline

from statefarm.pipelines.training.nodes import report_training, train_model, train_model_with_pseudo_labels

SHARED_INPUTS = {"image_cache", "image_index", "driver_split", "tuned_augmentations"}
RECIPE = [
    "params:model", "params:optimizer", "params:scheduler", "params:annealer", "params:training",
    "params:augment", "params:seed", "params:submission",
]  # fmt: skip
SHARED_PARAMETERS = set(RECIPE)


def create_pipeline(namespace: str = "baseline", pseudo_labels_from: str | None = None, **kwargs) -> Pipeline:
    """The training pipeline under ``namespace``.

    Args:
        namespace: Prefix of its datasets and metrics.
        pseudo_labels_from: Namespace of the model whose pseudo-labels (``pseudo_labels``)
            fill part of every batch and whose weights it may start from; ``None`` trains
            on the labelled drivers only.
    """
    data = ["image_cache", "image_index", "driver_split", "checkpoints", "tuned_augmentations"]
    shared_inputs, shared_parameters = set(SHARED_INPUTS), set(SHARED_PARAMETERS)
    if pseudo_labels_from is None:
        function, inputs = train_model, data + RECIPE
    else:
        function = train_model_with_pseudo_labels
        inputs = data + ["pseudo_labels", f"{pseudo_labels_from}.model", "params:pseudo_label"] + RECIPE
        shared_inputs |= {"pseudo_labels", f"{pseudo_labels_from}.model"}
        shared_parameters |= {"params:pseudo_label"}
    return pipeline(
        [
            node(
                update_wrapper(partial(function, metrics_prefix=f"{namespace}."), function),
                inputs=inputs,
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
        inputs=shared_inputs,
        parameters=shared_parameters,
    )
