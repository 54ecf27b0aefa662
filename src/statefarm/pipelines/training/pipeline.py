"""``training``: image_cache + a fold's driver_split -> model, history, validation predictions and reports.

Built once and namespaced (``baseline.fold_<k>``, and ``pseudo.fold_<k>`` for the
retraining with pseudo-labels) rather than copied; the namespace also names the model's
child run in MLflow, which holds its per-epoch metrics.
"""

from functools import partial, update_wrapper

from kedro.pipeline import Pipeline, node, pipeline

from statefarm.pipelines.training.nodes import report_training, train_model, train_model_with_pseudo_labels

SHARED_INPUTS = {"image_cache", "image_index", "tuned_augmentations", "tuned_regularization"}
RECIPE = [
    "params:model", "params:optimizer", "params:scheduler", "params:annealer", "params:training",
    "params:augment", "params:seed", "params:submission",
]  # fmt: skip
PARAMETERS = [*RECIPE, "params:runtime"]
SHARED_PARAMETERS = set(PARAMETERS)


def create_pipeline(
    namespace: str = "baseline.fold_0",
    driver_split: str = "fold_0.driver_split",
    init_model: str | None = None,
    member: str | None = None,
    labelled_by: str | None = None,
    **kwargs,
) -> Pipeline:
    """The training pipeline under ``namespace``.

    Args:
        namespace: Prefix of its datasets and metrics.
        driver_split: The split it trains and validates on.
        init_model: With pseudo-labels: the model it may start from. Its ``pseudo_labels``
            (and their ``pseudo_label_sources``) fill part of every batch. ``None``
            trains on the labelled drivers only.
        member: A member of the blend: its keys (``params:blend.members.<member>``) go over the recipe's.
        labelled_by: Where its ``pseudo_labels`` come from (``blend_labels.fold_0``); ``None``: ``namespace``.
    """
    data = ["image_cache", "image_index", "driver_split", "checkpoints", "tuned_augmentations", "tuned_regularization"]
    shared_inputs = set(SHARED_INPUTS)
    shared_parameters = set(SHARED_PARAMETERS)
    if init_model is None:
        function, inputs = train_model, data + PARAMETERS
    else:
        function = train_model_with_pseudo_labels
        inputs = data + ["pseudo_labels", "pseudo_label_sources", init_model, "params:pseudo_label"] + PARAMETERS
        shared_inputs |= {init_model}
        shared_parameters |= {"params:pseudo_label"}
    if member is not None:
        inputs = [*inputs, f"params:blend.members.{member}"]
        shared_parameters |= {f"params:blend.members.{member}"}
    outside = {name: name for name in shared_inputs} | {"driver_split": driver_split}
    if labelled_by is not None:
        outside |= {name: f"{labelled_by}.{name}" for name in ("pseudo_labels", "pseudo_label_sources")}
    return pipeline(
        [
            node(
                update_wrapper(partial(function, run_name=namespace), function),
                inputs=inputs,
                outputs=["model", "training_history", "valid_predictions"],
                name="train_model",
            ),
            node(
                update_wrapper(
                    partial(report_training, model=namespace, pseudo_labelled=init_model is not None), report_training
                ),
                inputs=["training_history", "valid_predictions"],
                outputs=["learning_curves", "confusion_matrix", "validation_report"],
                name="report_training",
            ),
        ],
        namespace=namespace,
        inputs=outside,
        parameters=shared_parameters,
    )
