"""``cross_validation``: the folds' validation and test predictions -> OOF report, calibration,
neighbour smoothing, ensemble.

Namespaced by model kind (``baseline``, ``pseudo``): it reads ``<kind>.fold_<k>.*``.
"""

from collections.abc import Sequence
from functools import partial, update_wrapper

from kedro.pipeline import Pipeline, node, pipeline

from statefarm.pipelines import names
from statefarm.pipelines.cross_validation.nodes import (
    choose_smoothing_without_each_fold,
    collect_out_of_fold,
    ensemble_test_predictions,
    report_cross_validation,
    smooth_out_of_fold,
    track_calibration,
)


def _with_folds(function, folds: Sequence[int]):
    return update_wrapper(partial(function, folds=list(folds)), function)


def create_pipeline(namespace: str = "baseline", folds: Sequence[int] = (0,), **kwargs) -> Pipeline:
    splits = [f"{names.fold(k)}.driver_split" for k in folds]
    return pipeline(
        [
            node(
                _with_folds(collect_out_of_fold, folds),
                inputs=[
                    "image_index",
                    "driver_folds",
                    "params:inference",
                    *[f"{names.fold(k)}.valid_predictions" for k in folds],
                    *splits,
                ],  # fmt: skip
                outputs=["calibrated_oof", "calibration"],
                name="collect_out_of_fold",
            ),
            node(
                _with_folds(smooth_out_of_fold, folds),
                inputs=["calibrated_oof", "params:inference", *[f"{names.fold(k)}.valid_neighbours" for k in folds]],
                outputs=[
                    "oof_predictions",
                    "neighbour_smoothing",
                    "neighbour_smoothing_grid",
                    "neighbour_smoothing_metrics",
                ],
                name="smooth_out_of_fold",
            ),
            node(
                _with_folds(choose_smoothing_without_each_fold, folds),
                inputs=["calibrated_oof", "params:inference", *[f"{names.fold(k)}.valid_neighbours" for k in folds]],
                outputs="leave_fold_out_smoothing",
                name="choose_smoothing_without_each_fold",
            ),
            node(track_calibration, inputs="calibration", outputs="calibration_metrics", name="track_calibration"),
            node(
                update_wrapper(partial(report_cross_validation, kind=namespace), report_cross_validation),
                inputs=["oof_predictions", "image_index", "params:submission"],
                outputs=["cv_report", "cv_metrics", "confusion_matrix", "validation_report"],
                name="report_cross_validation",
            ),
            node(
                _with_folds(ensemble_test_predictions, folds),
                inputs=[
                    "calibration",
                    "neighbour_smoothing",
                    "params:inference",
                    *[f"{names.fold(k)}.test_logits" for k in folds],
                    *[f"{names.fold(k)}.test_neighbours" for k in folds],
                ],
                outputs="test_predictions",
                name="ensemble_test_predictions",
            ),
        ],
        namespace=namespace,
        inputs={"image_index", "driver_folds", *splits},
        parameters={"params:inference", "params:submission"},
    )
