"""``blend``: the main model's and each member's predictions of one stage -> their blend, report and predictions.

Namespaced ``<stage>.blend`` (``baseline.blend``, ``pseudo.blend``); it reads
``<model>.oof_predictions`` and ``<model>.test_predictions`` of each blended model.
"""

from collections.abc import Sequence
from functools import partial, update_wrapper

from kedro.pipeline import Pipeline, node, pipeline

from statefarm.pipelines.blend.nodes import blend_out_of_fold, blend_test_predictions
from statefarm.pipelines.cross_validation.nodes import report_cross_validation


def _with_models(function, models: Sequence[str]):
    return update_wrapper(partial(function, models=list(models)), function)


def create_pipeline(namespace: str = "pseudo.blend", models: Sequence[str] = ("pseudo",), **kwargs) -> Pipeline:
    oof = [f"{model}.oof_predictions" for model in models]
    tests = [f"{model}.test_predictions" for model in models]
    return pipeline(
        [
            node(
                _with_models(blend_out_of_fold, models),
                inputs=oof,
                outputs=["oof_predictions", "blend_weights", "blend_metrics"],
                name="blend_out_of_fold",
            ),
            node(
                _with_models(blend_test_predictions, models),
                inputs=["blend_weights", *tests],
                outputs="test_predictions",
                name="blend_test_predictions",
            ),
            node(
                update_wrapper(partial(report_cross_validation, kind=namespace), report_cross_validation),
                inputs=["oof_predictions", "image_index", "params:submission"],
                outputs=["cv_report", "cv_metrics", "confusion_matrix", "validation_report"],
                name="report_cross_validation",
            ),
        ],
        namespace=namespace,
        inputs={"image_index", *oof, *tests},
        parameters={"params:submission"},
    )
