"""``pseudo_label`` nodes: each fold's pseudo-labels from its own baseline, and the comparison after.

The whole chain that registers as ``pseudo_label`` is assembled in ``pipeline_registry``.
"""

from collections.abc import Sequence
from functools import partial, update_wrapper

from kedro.pipeline import Pipeline, node, pipeline

from statefarm.pipelines.pseudo_label.nodes import (
    compare_models,
    make_pseudo_labels,
    track_comparison,
    track_pseudo_labels,
)


def create_pipeline(
    folds: Sequence[int] = (0,), kind: str = "pseudo", labels_from: str = "baseline", compare: bool = True, **kwargs
) -> Pipeline:
    """``<kind>.fold_<k>.pseudo_labels`` from ``<labels_from>.fold_<k>``: the one model that never saw fold k.

    With ``compare``, also ``model_comparison``: ``<labels_from>`` against ``<kind>``, out of fold.
    """
    per_fold = []
    for fold in folds:
        model = f"{labels_from}.fold_{fold}"
        per_fold.append(
            pipeline(
                [
                    node(
                        update_wrapper(partial(make_pseudo_labels, model_name=model, fold=fold), make_pseudo_labels),
                        inputs=[
                            f"{model}.test_logits",
                            f"{model}.test_neighbours",
                            f"{model}.model",
                            f"{labels_from}.leave_fold_out_smoothing",
                            "params:pseudo_label",
                        ],
                        outputs=["pseudo_labels", "pseudo_label_sources"],
                        name="make_pseudo_labels",
                    ),
                    node(
                        track_pseudo_labels,
                        inputs=["pseudo_labels", f"{model}.test_logits"],
                        outputs="pseudo_label_metrics",
                        name="track_pseudo_labels",
                    ),
                ],
                namespace=f"{kind}.fold_{fold}",
                inputs={
                    f"{model}.test_logits",
                    f"{model}.test_neighbours",
                    f"{model}.model",
                    f"{labels_from}.leave_fold_out_smoothing",
                },
                parameters={"params:pseudo_label"},
            )
        )
    labelled = sum(per_fold, Pipeline([]))
    if not compare:
        return labelled
    comparison = pipeline(
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
    return labelled + comparison
