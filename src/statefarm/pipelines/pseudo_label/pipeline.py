"""``pseudo_label`` nodes: each fold's pseudo-labels, from its own baseline or the baselines' blend; the comparison.

The whole chain that registers as ``pseudo_label`` is assembled in ``statefarm.pipelines.chain``.
"""

from collections.abc import Sequence
from functools import partial, update_wrapper

from kedro.pipeline import Pipeline, node, pipeline

from statefarm.pipelines import names
from statefarm.pipelines.pseudo_label.nodes import (
    compare_models,
    make_blended_pseudo_labels,
    make_pseudo_labels,
    track_comparison,
    track_pseudo_labels,
)


def _labels_and_metrics(labelling, inputs: list[str], test_logits: str, namespace: str) -> Pipeline:
    return pipeline(
        [
            node(
                labelling, inputs=inputs, outputs=["pseudo_labels", "pseudo_label_sources"], name="make_pseudo_labels"
            ),
            node(
                track_pseudo_labels,
                inputs=["pseudo_labels", test_logits],
                outputs="pseudo_label_metrics",
                name="track_pseudo_labels",
            ),
        ],
        namespace=namespace,
        inputs={name for name in inputs if not name.startswith("params:")} | {test_logits},
        parameters={"params:pseudo_label"},
    )


def create_pipeline(
    folds: Sequence[int] = (0,), kind: str = "pseudo", labels_from: str = "baseline", **kwargs
) -> Pipeline:
    """``<kind>.fold_<k>.pseudo_labels`` from ``<labels_from>.fold_<k>``: the one model that never saw fold k."""
    per_fold = []
    for fold in folds:
        model = names.fold_model(labels_from, fold)
        labelling = update_wrapper(partial(make_pseudo_labels, model_name=model, fold=fold), make_pseudo_labels)
        inputs = [
            f"{model}.test_logits", f"{model}.test_neighbours", f"{model}.model",
            f"{labels_from}.calibration", f"{labels_from}.leave_fold_out_smoothing", "params:pseudo_label",
        ]  # fmt: skip
        per_fold.append(_labels_and_metrics(labelling, inputs, f"{model}.test_logits", names.fold_model(kind, fold)))
    return sum(per_fold, Pipeline([]))


def create_blended_pipeline(
    folds: Sequence[int] = (0,), models: Sequence[str] = ("baseline",), namespace: str = "blend_labels", **kwargs
) -> Pipeline:
    """``<namespace>.fold_<k>.pseudo_labels`` from the blend of ``<model>.fold_<k>`` for each baseline in ``models``.

    Each calibrated, then pooled with ``baseline.blend.blend_weights``' weights for fold k, all fitted without
    fold k's images.
    """
    per_fold = []
    for fold in folds:
        labelling = update_wrapper(
            partial(make_blended_pseudo_labels, models=list(models), fold=fold), make_blended_pseudo_labels
        )
        teachers = []
        for model in models:
            fold_model = names.fold_model(model, fold)
            teachers += [f"{fold_model}.test_logits", f"{fold_model}.test_neighbours", f"{fold_model}.model",
                         f"{model}.calibration", f"{model}.leave_fold_out_smoothing"]  # fmt: skip
        inputs = ["baseline.blend.blend_weights", "params:pseudo_label", *teachers]
        per_fold.append(_labels_and_metrics(labelling, inputs, teachers[0], names.fold_model(namespace, fold)))
    return sum(per_fold, Pipeline([]))


def create_comparison(kind: str = "pseudo", labels_from: str = "baseline", **kwargs) -> Pipeline:
    """``model_comparison``: ``<labels_from>`` against ``<kind>``, out of fold, overall and per driver."""
    return pipeline(
        [
            node(
                compare_models,
                inputs=[f"{labels_from}.oof_predictions", f"{kind}.oof_predictions", "params:submission"],
                outputs="model_comparison",
                name="compare_models",
            ),
            node(track_comparison, inputs="model_comparison", outputs="comparison_metrics", name="track_comparison"),
        ],
        namespace="comparison",
        inputs={f"{labels_from}.oof_predictions", f"{kind}.oof_predictions"},
        outputs={"model_comparison", "comparison_metrics"},
        parameters={"params:submission"},
    )
