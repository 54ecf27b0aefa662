import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax

from statefarm.data.splits import DriverLeakError
from statefarm.evaluation import cross_validation as cv
from statefarm.evaluation.inference import fit_temperature


def _image_index(drivers: int = 6, per_driver: int = 20) -> pd.DataFrame:
    rows = [(f"img_{d}_{i}.jpg", "train", f"p{d:03d}", i % 10, True) for d in range(drivers) for i in range(per_driver)]
    rows += [(f"img_t{i}.jpg", "test", None, -1, True) for i in range(7)]
    return pd.DataFrame(rows, columns=["img", "split", "subject", "label", "valid"])


def _splits(drivers: int = 6, folds: int = 3) -> dict[int, dict]:
    names = [f"p{d:03d}" for d in range(drivers)]
    return {
        k: {
            "fold": k,
            "valid_drivers": names[k::folds],
            "train_drivers": [n for n in names if n not in names[k::folds]],
        }
        for k in range(folds)
    }


def _valid_predictions(index: pd.DataFrame, split: dict, rng: np.random.Generator, scale: float = 1.0) -> pd.DataFrame:
    """Logits that favour the true class, overconfident by ``scale``."""
    rows = index[(index["split"] == "train") & index["subject"].isin(split["valid_drivers"])]
    logits = rng.normal(size=(len(rows), 10))
    logits[np.arange(len(rows)), rows["label"].to_numpy()] += 1.5
    logits *= scale
    return rows.loc[:, ["img", "subject", "label"]].assign(**{c: logits[:, k] for k, c in enumerate(cv.LOGITS)})


@pytest.fixture
def folds():
    index, splits, rng = _image_index(), _splits(), np.random.default_rng(0)
    return index, splits, {k: _valid_predictions(index, split, rng, scale=3.0) for k, split in splits.items()}


def test_out_of_fold_covers_every_labelled_image_once_from_a_model_that_never_saw_its_driver(folds):
    index, splits, predictions = folds
    oof = cv.collect_out_of_fold(predictions, splits, index, complete=True)

    labelled = index[index["split"] == "train"]
    assert sorted(oof["img"]) == sorted(labelled["img"]) and not oof["img"].duplicated().any()
    for row in oof.itertuples():
        assert row.subject not in splits[row.fold]["train_drivers"]


def test_a_fold_predicting_a_driver_it_trained_on_is_refused(folds):
    index, splits, predictions = folds
    leaky = {**splits, 0: {**splits[0], "train_drivers": [*splits[0]["train_drivers"], "p000"]}}
    with pytest.raises(DriverLeakError, match=r"fold 0's model trained on driver\(s\) \['p000'\]"):
        cv.collect_out_of_fold(predictions, leaky, index, complete=True)


def test_a_missing_or_doubled_image_is_refused(folds):
    index, splits, predictions = folds
    with pytest.raises(cv.OutOfFoldError, match="have no out-of-fold prediction"):
        cv.collect_out_of_fold({0: predictions[0], 1: predictions[1]}, splits, index, complete=True)
    partial = cv.collect_out_of_fold({0: predictions[0]}, splits, index, complete=False)
    assert set(partial["subject"]) == set(splits[0]["valid_drivers"])
    doubled = {**predictions, 1: pd.concat([predictions[1], predictions[0].iloc[:1]])}
    doubled_splits = {**splits, 1: {**splits[1], "valid_drivers": splits[1]["valid_drivers"] + ["p000"]}}
    doubled_splits[1]["train_drivers"] = [d for d in splits[1]["train_drivers"] if d != "p000"]
    with pytest.raises(cv.OutOfFoldError, match="more than one fold"):
        cv.collect_out_of_fold(doubled, doubled_splits, index, complete=True)


def test_calibration_undoes_overconfidence_and_is_chosen_on_held_out_drivers(folds):
    index, splits, predictions = folds
    oof = cv.collect_out_of_fold(predictions, splits, index, complete=True)
    calibration = cv.fit_calibration(oof)

    assert calibration["mode"] in ("shared", "per_fold")
    held_out = calibration["held_out_log_loss"]
    assert held_out[calibration["mode"]] < held_out["none"]
    assert all(t > 1.2 for t in calibration["temperatures"].values())  # the logits were made overconfident
    # Each fold's pseudo-labels get a temperature fitted on the other folds' images alone.
    others = oof[oof["fold"] != 0]
    refit = fit_temperature(others.loc[:, cv.LOGITS].to_numpy(), others["label"].to_numpy())["temperature"]
    assert calibration["temperatures_without_fold"]["0"] == pytest.approx(refit)
    assert cv.temperature_without_fold(calibration, 0, "baseline") == pytest.approx(refit)
    with pytest.raises(ValueError, match="Rerun baseline.collect_out_of_fold"):
        cv.temperature_without_fold({"mode": "shared", "temperatures": {"0": 2.0}}, 0, "baseline")
    calibrated = cv.calibrate_out_of_fold(oof, calibration)
    assert np.allclose(calibrated.loc[:, cv.PROBABILITIES].sum(axis=1), 1.0)
    off = {"0": 1.0, "1": 1.0, "2": 1.0}
    assert cv.fit_calibration(oof, enabled=False) == {
        "mode": "none", "temperatures": off, "temperatures_without_fold": off,
        "held_out_log_loss": {"none": held_out["none"]},
    }  # fmt: skip


def test_cv_report_scores_each_driver_fold_and_all_with_the_spread(folds):
    index, splits, predictions = folds
    oof = cv.calibrate_out_of_fold(cv.collect_out_of_fold(predictions, splits, index, complete=True), {"mode": "none"})
    report = cv.cv_report(oof, clip=0.01, labelled_images=120)

    drivers = report[report["scope"] == "driver"]
    assert len(drivers) == 6 and drivers["images"].sum() == 120
    overall = report[report["scope"] == "overall"].iloc[0]
    assert overall["coverage"] == 1.0
    # the overall log loss is the image-weighted mean of the drivers' (equal counts here)
    assert overall["log_loss"] == pytest.approx(drivers["log_loss"].mean())
    assert overall["log_loss"] == pytest.approx(overall["log_loss_uncalibrated"])
    spread = report[report["scope"] == "driver_spread"].set_index("subject")
    assert spread.loc["max", "log_loss"] == pytest.approx(drivers["log_loss"].max())
    assert spread.loc["std", "log_loss"] == pytest.approx(drivers["log_loss"].std())
    metrics = cv.cv_metrics(report)
    assert {"log_loss", "accuracy", "driver_log_loss_std", "fold_2.log_loss"} <= set(metrics)


@pytest.mark.parametrize("method", ["arithmetic", "geometric"])
def test_an_ensemble_of_identical_models_equals_one_model(method):
    rng = np.random.default_rng(1)
    logits = pd.DataFrame(rng.normal(size=(7, 10)) * 2, columns=cv.LOGITS).assign(img=[f"t{i}" for i in range(7)])
    calibration = {"temperatures": {"0": 1.7, "1": 1.7, "2": 1.7}}
    ensemble = cv.ensemble_test_predictions({0: logits, 1: logits.copy(), 2: logits.copy()}, calibration, method)
    single = softmax(logits.loc[:, cv.LOGITS].to_numpy() / 1.7, axis=1)
    np.testing.assert_allclose(ensemble.loc[:, cv.PROBABILITIES].to_numpy(), single, rtol=1e-10)
    assert ensemble["img"].tolist() == logits["img"].tolist()


def test_geometric_and_arithmetic_means_differ_on_disagreeing_models():
    a, b = np.array([[0.9, 0.1]]), np.array([[0.1, 0.9]])
    np.testing.assert_allclose(cv.mean_probabilities([a, b], "arithmetic"), [[0.5, 0.5]])
    np.testing.assert_allclose(cv.mean_probabilities([a, np.array([[0.5, 0.5]])], "geometric").sum(), 1.0)
    geometric = cv.mean_probabilities([a, np.array([[0.5, 0.5]])], "geometric")  # arithmetic gives 0.7
    assert geometric[0, 0] == pytest.approx(np.sqrt(0.45) / (np.sqrt(0.45) + np.sqrt(0.05)))
