"""``pseudo_label``: the whole chain, from the raw files to two submissions and their comparison.

data_prep -> sampling -> augment_tuning -> training, inference, submission (``baseline``)
-> pseudo-labels -> training, inference, submission (``pseudo``) -> comparison.
The stage pipelines are reused under two namespaces, not copied.
"""

from kedro.pipeline import Pipeline, node, pipeline

from statefarm.pipelines import augment_tuning, data_prep, inference, sampling, submission, training
from statefarm.pipelines.pseudo_label.nodes import (
    compare_models,
    make_pseudo_labels,
    track_comparison,
    track_pseudo_labels,
)


def create_pipeline(**kwargs) -> Pipeline:
    pseudo_labelling = pipeline(
        [
            node(
                make_pseudo_labels,
                inputs=["baseline.test_predictions", "params:pseudo_label"],
                outputs="pseudo_labels",
                name="make_pseudo_labels",
            ),
            node(
                track_pseudo_labels,
                inputs=["pseudo_labels", "baseline.test_predictions"],
                outputs="pseudo_label_metrics",
                name="track_pseudo_labels",
            ),
            node(
                compare_models,
                inputs=["baseline.valid_predictions", "pseudo.valid_predictions", "params:submission"],
                outputs="model_comparison",
                name="compare_models",
            ),
            node(track_comparison, inputs="model_comparison", outputs="comparison_metrics", name="track_comparison"),
        ]
    )
    return (
        data_prep.create_pipeline()
        + sampling.create_pipeline()
        + augment_tuning.create_pipeline()
        + training.create_pipeline("baseline")
        + inference.create_pipeline("baseline")
        + submission.create_pipeline("baseline")
        + pseudo_labelling
        + training.create_pipeline("pseudo", pseudo_labels_from="baseline")
        + inference.create_pipeline("pseudo")
        + submission.create_pipeline("pseudo")
    )
