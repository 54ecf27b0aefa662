import json
import logging
import math
import re

import mlflow
import pandas as pd
import pytest

from statefarm.data.splits import SampleConfig, SplitConfig, assign_folds, make_sample, split_fold
from statefarm.evaluation.reports import augment_scan_figure
from statefarm.modeling.augment import build_transform
from statefarm.modeling.augment_tuning import TuningConfig, keep_combination, keep_scan_choice, scan_augmentations
from statefarm.modeling.models import ModelConfig
from statefarm.modeling.optim import AnnealerConfig, OptimizerConfig, SchedulerConfig
from statefarm.modeling.training import Recipe, TrainingConfig, choose_augmentations
from statefarm.pipelines.training.pipeline import create_pipeline as training_pipeline
from statefarm.runtime.config import RuntimeConfig

GRID = {
    "shift": {
        "transform": "Affine", "argument": "translate_percent", "values": [[-0.02, 0.02], [-0.3, 0.3]],
        "fixed": {"p": 1.0},
    },
    "broken": {"transform": "Affine", "argument": "no_such_argument", "values": [1, 2]},
    "brightness": {
        "transform": "RandomBrightnessContrast", "argument": "brightness_limit", "values": [0.1, 0.6],
        "fixed": {"contrast_limit": 0.0, "p": 1.0},
    },
}  # fmt: skip


def _config(**changes) -> TuningConfig:
    params = {
        "candidates": GRID,
        "margin": 0.0,
        "model": {"name": "statefarm_small_cnn"},
        "training": {"epochs": 2, "batch_size": 16},
    }
    return TuningConfig.model_validate(params | changes)


CPU = RuntimeConfig(device="cpu", num_workers=0)
# The model the scan tunes for: another optimizer than the scan's own, so that a trial that
# followed it instead would be told apart.
MAIN = Recipe(
    ModelConfig(name="statefarm_small_cnn", input_size=(48, 64)),
    OptimizerConfig(opt="adam", lr=1e-3),
    SchedulerConfig(),
    AnnealerConfig(),
    TrainingConfig(),
)


def _children(run) -> list:
    return mlflow.search_runs(filter_string=f"tags.mlflow.parentRunId = '{run.info.run_id}'", output_format="list")


@pytest.fixture(scope="module")
def sample(prepared_data):
    image_index, _ = prepared_data
    train = image_index[image_index["split"] == "train"]
    split = split_fold(train, assign_folds(train, SplitConfig(n_folds=3), seed=0), fold=0)
    return make_sample(train, split, SampleConfig(train_drivers=3, valid_drivers=2, images_per_class=3), seed=0)


def test_scan_keeps_each_transforms_best_value_and_records_failures(prepared_data, sample, caplog):
    _, cache = prepared_data
    with mlflow.start_run() as parent, caplog.at_level(logging.INFO, logger="statefarm.modeling.augment_tuning"):
        scan, tuned = scan_augmentations(cache, sample, _config(), MAIN, CPU, seed=0, clip=1e-3)
        assert mlflow.active_run().info.run_id == parent.info.run_id  # the trials' runs ended, not the parent

    assert scan["trial"].tolist()[:7] == [
        "no_augmentation", "shift=[-0.02, 0.02]", "shift=[-0.3, 0.3]", "broken=1", "broken=2",
        "brightness=0.1", "brightness=0.6",
    ]  # fmt: skip
    broken = scan[scan["transform"] == "broken"]
    assert (broken["status"] == "failed").all() and broken["error"].str.contains("no_such_argument").all()
    ok = scan[scan["status"] == "ok"].set_index("trial")
    plain = ok.at["no_augmentation", "valid_loss"]
    winners = {}
    for name in ("shift", "brightness"):
        trials = ok[ok["transform"] == name]
        best = trials["valid_loss"].idxmin()
        if trials.at[best, "valid_loss"] < plain:
            winners[best] = json.loads(trials.at[best, "spec"])
    assert ("combined" in ok.index) == (len(winners) > 1)  # one winner is its own combination
    assert tuned["augment"] == [step for spec in winners.values() for step in spec]  # combination: always
    build_transform(tuned["augment"])  # the result is a valid spec
    progress = [record.getMessage() for record in caplog.records if re.match(r"Trial \d+/", record.getMessage())]
    assert len(progress) == len(scan) and progress[0].startswith("Trial 1/") and "ETA" in progress[-1]
    assert progress[-1].startswith(f"Trial {len(scan)}/")  # the total counts every trial that ran

    [scan_run] = _children(parent)  # the trials are grouped under one run of the scan
    assert scan_run.info.run_name == "augment_tuning" and scan_run.data.metrics["trials"] == len(scan)
    assert scan_run.data.metrics["no_augmentation_valid_loss"] == tuned["no_augmentation_valid_loss"]
    children = _children(scan_run)
    assert len(children) == len(scan)
    by_name = {run.info.run_name: run for run in children}
    assert by_name["shift=[-0.3, 0.3]"].data.params["transform"] == "shift"
    assert by_name["shift=[-0.3, 0.3]"].data.params["argument"] == "translate_percent"
    assert "valid_loss" in by_name["shift=[-0.3, 0.3]"].data.metrics
    assert by_name["broken=1"].info.status == "FAILED"

    scan_again, tuned_again = scan_augmentations(cache, sample, _config(), MAIN, CPU, seed=0, clip=1e-3)
    assert tuned_again["augment"] == tuned["augment"]
    pd.testing.assert_series_equal(scan_again["valid_loss"], scan["valid_loss"])


def test_a_huge_margin_keeps_nothing(prepared_data, sample):
    _, cache = prepared_data
    config = _config(candidates={"shift": GRID["shift"]}, margin=10.0, repeats=2)
    scan, tuned = scan_augmentations(cache, sample, config, MAIN, CPU, seed=0, clip=1e-3)
    assert tuned["augment"] == [] and "no transform beat no augmentation" in tuned["note"]
    assert "combined" not in set(scan["trial"])
    # Two seeds per trial: the score is their mean, and their spread is reported.
    once = config.model_copy(update={"repeats": 1})
    seed0, _ = scan_augmentations(cache, sample, once, MAIN, CPU, seed=0, clip=1e-3)
    seed1, _ = scan_augmentations(cache, sample, once, MAIN, CPU, seed=1, clip=1e-3)
    assert scan["valid_loss_std"].notna().all() and seed0["valid_loss_std"].isna().all()
    pd.testing.assert_series_equal(
        scan["valid_loss"], (seed0["valid_loss"] + seed1["valid_loss"]) / 2, check_exact=False, rtol=1e-9
    )


def test_the_scan_trains_the_model_it_tunes_for_at_its_input_size_unless_told_another(prepared_data, sample, caplog):
    _, cache = prepared_data
    config = _config(candidates={"shift": GRID["shift"]}, model=None, optimizer={"lr": 1e-3})
    recipe = config.recipe(MAIN)
    assert recipe.model == MAIN.model and recipe.optimizer.opt == "adamw"  # the scan's own optimizer wins
    assert recipe.scheduler == MAIN.scheduler and recipe.training.epochs == 2 and not recipe.annealer.enabled
    assert (
        _config().recipe(MAIN).model.name == "statefarm_small_cnn" and _config().recipe(MAIN).model.input_size is None
    )
    with mlflow.start_run() as parent, caplog.at_level(logging.INFO, logger="statefarm.modeling.augment_tuning"):
        scan, _ = scan_augmentations(cache, sample, config, MAIN, CPU, seed=0, clip=1e-3)
    assert (scan["status"] == "ok").all()
    assert "trials of statefarm_small_cnn at 48x64, 2 epoch(s) x 1 seed(s)" in caplog.text  # cache: 24x32
    [scan_run] = _children(parent)
    assert scan_run.data.params["model"] == "statefarm_small_cnn" and scan_run.data.params["input_size"] == "48x64"
    assert {run.data.params["model"] for run in _children(scan_run)} == {"statefarm_small_cnn"}


def test_successive_halving_stops_the_losers_early_and_gives_only_the_others_their_seeds(prepared_data, sample):
    _, cache = prepared_data
    harmful = {
        "shift": {"transform": "Affine", "argument": "translate_percent", "values": [[-0.4, 0.4], [-0.3, 0.3]],
                  "fixed": {"p": 1.0}},
        "brightness": GRID["brightness"],
    }  # fmt: skip
    config = _config(
        candidates=harmful, repeats=2, training={"epochs": 3, "batch_size": 16},
        halving={"min_epochs": 1, "reduction_factor": 2},
    )  # fmt: skip
    with mlflow.start_run():
        scan, _ = scan_augmentations(cache, sample, config, MAIN, CPU, seed=0, clip=1e-3)
    trials = scan.set_index("trial")
    assert trials.at["no_augmentation", "status"] == "ok" and trials.at["no_augmentation", "epochs"] == 3 * 2
    stopped = trials[trials["status"] == "pruned"]
    assert len(stopped) >= 1 and (stopped["epochs"] < 3).all()  # one seed, cut short
    assert stopped["valid_loss"].notna().all() and stopped["error"].str.startswith("stopped after epoch").all()
    finished = trials[(trials["status"] == "ok") & (trials.index != "combined")]
    assert (finished["epochs"] == 3 * 2).all()  # only trials that kept up get their second seed
    assert trials["epochs"].sum() < 3 * 2 * len(trials)
    assert augment_scan_figure(scan, {"chosen": {}}) is not None  # a stopped trial is drawn, not a failure


def test_the_combination_can_be_kept_only_when_it_beats_the_best_single_transform():
    chosen = {"shift": {"value": [-0.1, 0.1], "valid_loss": 0.90}, "blur": {"value": [3, 3], "valid_loss": 0.85}}
    singles = {
        "shift": [{"Affine": {"translate_percent": [-0.1, 0.1]}}],
        "blur": [{"GaussianBlur": {"blur_limit": [3, 3]}}],
    }
    combined = singles["shift"] + singles["blur"]
    assert keep_combination(chosen, singles, combined, 0.84) == (combined, "")
    assert keep_combination(chosen, singles, combined, 0.85) == (combined, "")  # a tie keeps the combination
    assert keep_combination(chosen, singles, combined, 0.87) == (singles["blur"], "blur")  # the winners interact
    assert keep_combination(chosen, singles, combined, float("nan")) == (singles["blur"], "blur")  # a failed one


def test_a_configured_spec_that_scores_better_on_the_sample_overrules_the_scan():
    scan, hand_written = [{"Affine": {"scale": [0.9, 1.1]}}], [{"Affine": {"scale": [0.9, 1.5]}}]
    better = {"status": "ok", "valid_loss": 1.10}
    assert keep_scan_choice(scan, 1.20, hand_written, better, margin=0.05) == (hand_written, "configured")
    assert keep_scan_choice(scan, 1.20, hand_written, better, margin=0.2) == (scan, "scan")  # not beyond the margin
    tie = {"status": "ok", "valid_loss": 1.20}
    assert keep_scan_choice(scan, 1.20, hand_written, tie, margin=0.0) == (scan, "scan")
    failed = {"status": "failed", "valid_loss": math.nan}
    assert keep_scan_choice(scan, 1.20, hand_written, failed, margin=0.0) == (scan, "scan")


@pytest.mark.slow
def test_the_scan_scores_the_configured_spec_as_a_challenger_on_the_same_sample(prepared_data, sample):
    _, cache = prepared_data
    shift = [{"Affine": {"p": 1.0, "translate_percent": [-0.02, 0.02]}}]  # the grid's first shift, hand-written
    config = _config(candidates={"broken": GRID["broken"]})  # every trial of the scan fails: it keeps nothing
    scan, tuned = scan_augmentations(cache, sample, config, MAIN, CPU, seed=0, clip=1e-3, configured=shift)
    rows = scan.set_index("trial")
    assert scan["trial"].tolist()[-1] == "configured" and rows.at["configured", "spec"] == json.dumps(shift)
    alone, _ = scan_augmentations(cache, sample, _config(candidates={"shift": GRID["shift"]}), MAIN, CPU, 0, 1e-3)
    shifted = alone.set_index("trial").at["shift=[-0.02, 0.02]", "valid_loss"]
    assert rows.at["configured", "valid_loss"] == pytest.approx(shifted)  # the same spec, the same training
    plain = rows.at["no_augmentation", "valid_loss"]
    assert tuned["scan_valid_loss"] == plain and tuned["configured_valid_loss"] == rows.at["configured", "valid_loss"]
    won = plain - tuned["configured_valid_loss"] > config.margin
    assert (tuned["kept"], tuned["augment"]) == (("configured", shift) if won else ("scan", []))
    off = config.model_copy(update={"challenge_configured": False})
    unchallenged, _ = scan_augmentations(cache, sample, off, MAIN, CPU, seed=0, clip=1e-3, configured=shift)
    assert "configured" not in set(unchallenged["trial"])


def test_training_uses_the_tuned_spec_when_there_is_one():
    configured = [{"Affine": {"rotate": 5}}]
    tuned = {"augment": [{"GaussianBlur": {"blur_limit": [3, 3]}}]}
    assert choose_augmentations(tuned, configured, use_tuned=True) == tuned["augment"]
    assert choose_augmentations(None, configured, use_tuned=True) == configured
    assert choose_augmentations(tuned, configured, use_tuned=False) == configured
    assert "tuned_augmentations" in training_pipeline().inputs()


@pytest.mark.parametrize(
    ("main", "member", "scans"),
    [(True, {}, True), (False, {}, False), (False, {"training": {"use_tuned_augmentations": True}}, True)],
)
def test_the_whole_chain_runs_the_scan_only_when_a_model_augments_with_its_result(main, member, scans):
    from statefarm.data.splits import SplitConfig
    from statefarm.evaluation.blending import BlendConfig
    from statefarm.pipelines.chain import build_pipelines, plan_pipelines

    blend = BlendConfig(members={"cnn": member})
    registered = build_pipelines(plan_pipelines(SplitConfig(), blend, TrainingConfig(use_tuned_augmentations=main)))
    chain = {node.name: node for node in registered["pseudo_label"].nodes}
    assert ("tune_augmentations" in chain) is scans  # twelve minutes of CPU on real80x60, for nothing
    assert "tuned_augmentations" in chain["baseline.cnn.fold_0.train_model"].inputs  # read when it exists
    assert "tune_augmentations" in {node.name for node in registered["augment_tuning"].nodes}
