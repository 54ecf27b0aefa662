import json
import math

import mlflow
import numpy as np
import pandas as pd
import pytest
from scipy.special import log_softmax

from statefarm.data.splits import SplitConfig, assign_folds, split_fold
from statefarm.modeling.models import ModelConfig
from statefarm.modeling.optim import AnnealerConfig, OptimizerConfig, SchedulerConfig
from statefarm.modeling.regularization_tuning import (
    RegularizationTuningConfig,
    apply_tuned_regularization,
    arm_recipe,
    fold_log_losses,
    is_kept,
    paired_gain,
    tune_regularization,
)
from statefarm.modeling.training import Recipe, TrainingConfig, labelled_rows
from statefarm.runtime.config import RuntimeConfig

CPU = RuntimeConfig(device="cpu", num_workers=0)
# A reference that barely learns in its budget: an arm that gives it a working learning rate must win on every fold.
REFERENCE = Recipe(
    ModelConfig(name="statefarm_small_cnn"), OptimizerConfig(opt="adamw", lr=1e-6, weight_decay=0.01),
    SchedulerConfig(), AnnealerConfig(), TrainingConfig(epochs=4, batch_size=16, label_smoothing=0.0),
)  # fmt: skip


def test_a_gain_is_paired_fold_by_fold_weighted_by_images_and_kept_only_beyond_its_noise():
    gain, error = paired_gain([1.0, 2.0], [0.9, 1.9], [10, 30])
    assert gain == pytest.approx(0.1) and error == pytest.approx(0.0, abs=1e-12)  # the folds' own spread is not noise
    gain, error = paired_gain([1.0, 1.0], [0.8, 1.1], [10, 10])  # gains 0.2 and -0.1
    assert gain == pytest.approx(0.05) and error == pytest.approx(0.15)  # sd 0.212 over sqrt(2) folds
    assert not is_kept(gain, error, margin=0.0, noise=2.0)
    assert is_kept(0.1, 0.0, margin=0.005, noise=2.0) and not is_kept(0.004, 0.0, margin=0.005, noise=2.0)
    one_fold = paired_gain([1.0], [0.9], [10])
    assert math.isnan(one_fold[1]) and is_kept(*one_fold, margin=0.0, noise=2.0)  # the margin alone decides


def test_an_arm_changes_only_its_key_and_a_bad_key_or_value_is_named():
    arm = arm_recipe(REFERENCE, {"optimizer.weight_decay": 0.1, "model.drop_rate": 0.2})
    assert arm.optimizer.weight_decay == 0.1 and arm.optimizer.lr == REFERENCE.optimizer.lr
    assert arm.model.drop_rate == 0.2 and arm.training == REFERENCE.training
    with pytest.raises(ValueError, match=r"regularization_tuning.training.label_smoothing"):
        arm_recipe(REFERENCE, {"training.label_smoothing": 1.5})
    with pytest.raises(ValueError, match=r"must be <section>.<field>"):
        RegularizationTuningConfig.model_validate({"candidates": {"wd": {"key": "weight_decay", "values": [0.1]}}})
    kept = {"wd": {"key": "optimizer.weight_decay", "values": [0.1]}, "mixup": None}  # null leaves conf/base's out
    assert list(RegularizationTuningConfig.model_validate({"candidates": kept}).candidates) == ["wd"]
    tuned = {"changes": {"optimizer.weight_decay": 0.1}}
    assert apply_tuned_regularization(REFERENCE, tuned, use_tuned=True).optimizer.weight_decay == 0.1
    assert apply_tuned_regularization(REFERENCE, tuned, use_tuned=False) == REFERENCE
    assert apply_tuned_regularization(REFERENCE, None, use_tuned=True) == REFERENCE


def _predictions(logits: np.ndarray, labels: np.ndarray) -> list[pd.DataFrame]:
    """Two folds of two drivers each, their validation logits as an arm's training would return them."""
    drivers = np.repeat(["p1", "p2", "p3", "p4"], len(labels) // 4)
    columns = {f"logit_c{k}": logits[:, k] for k in range(10)}
    table = pd.DataFrame({"subject": drivers, "label": labels, "fold": np.repeat([0, 1], len(labels) // 2), **columns})
    return [rows.reset_index(drop=True) for _, rows in table.groupby("fold")]


def test_an_arm_that_only_moves_confidence_gains_nothing_once_calibrated_as_the_chain_calibrates():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 400)
    logits = rng.normal(size=(400, 10)) + 2.0 * np.eye(10)[labels]
    reference, unsure = _predictions(2.0 * logits, labels), _predictions(0.5 * logits, labels)
    raw = [fold_log_losses([arm], calibrate=False) for arm in (reference, unsure)]
    expected = [float(-log_softmax(2.0 * logits, axis=1)[np.arange(400), labels][rows].mean()) for rows in (
        slice(0, 200), slice(200, 400))]  # fmt: skip
    assert raw[0] == pytest.approx(expected)  # uncalibrated: each fold's plain softmax log loss
    assert all(u > r + 0.4 for u, r in zip(raw[1], raw[0], strict=True))  # the same ranking, less sure: far worse
    calibrated = [fold_log_losses([arm], calibrate=True) for arm in (reference, unsure)]
    assert calibrated[1] == pytest.approx(calibrated[0], abs=5e-3)  # and no different once calibrated
    assert all(c < r - 0.4 for c, r in zip(calibrated[1], raw[1], strict=True))
    two_seeds = fold_log_losses([reference, unsure], calibrate=False)
    assert two_seeds == pytest.approx(np.mean(raw, axis=0))  # a fold's loss is the mean over seeds


@pytest.fixture(scope="module")
def folds(prepared_data):
    image_index, _ = prepared_data
    labelled = image_index[image_index["split"] == "train"]
    driver_folds = assign_folds(labelled, SplitConfig(n_folds=3), seed=0)
    rows = []
    for fold in (0, 1):
        split = split_fold(labelled, driver_folds, fold)
        rows.append((fold, *(labelled_rows(image_index, split[side]) for side in ("train_drivers", "valid_drivers"))))
    return rows


@pytest.mark.slow
def test_an_arm_is_kept_by_its_out_of_fold_gain_beyond_the_noise_of_its_fold_by_fold_gains(prepared_data, folds):
    _, cache = prepared_data
    config = RegularizationTuningConfig.model_validate({
        "candidates": {
            "learning": {"key": "optimizer.lr", "values": [1e-2]},
            "smoothing": {"key": "training.label_smoothing", "values": [0.0, 0.9]},  # 0.0 is the reference's own
        },
        "margin": 0.05, "noise": 0.5,
    })  # fmt: skip
    with mlflow.start_run() as parent:
        table, tuned = tune_regularization(cache, folds, config, REFERENCE, None, CPU, seed=0, clip=1e-3)
        assert mlflow.active_run().info.run_id == parent.info.run_id

    assert table["arm"].tolist() == ["reference", "learning=0.01", "smoothing=0.9"]  # 0.0 skipped, no combination
    rows = table.set_index("arm")
    assert (rows["folds"] == 2).all() and (rows["status"] == "ok").all()
    learning = rows.loc["learning=0.01"]
    reference_losses, learning_losses = (json.loads(rows.at[arm, "fold_log_losses"]) for arm in rows.index[:2])
    assert all(arm < ref for arm, ref in zip(learning_losses, reference_losses, strict=True))  # better on each fold
    assert learning["gain"] == pytest.approx(rows.at["reference", "oof_log_loss"] - learning["oof_log_loss"])
    assert tuned["changes"] == {"optimizer.lr": 1e-2} and set(tuned["chosen"]) == {"learning=0.01"}
    assert tuned["oof_log_loss"] == learning["oof_log_loss"] < tuned["reference_oof_log_loss"]
    # Better on both folds, yet by 0.02 on one and 1.5 on the other: at 2 standard errors it is not told from noise.
    assert not is_kept(learning["gain"], learning["gain_std_error"], margin=0.05, noise=2.0)
    scan = mlflow.search_runs(filter_string="tags.stage = 'regularization_scan'", output_format="list")
    assert len(scan) == 1 and scan[0].data.metrics["tuned_oof_log_loss"] == pytest.approx(tuned["oof_log_loss"])
