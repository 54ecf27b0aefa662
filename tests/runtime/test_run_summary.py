import sys
from pathlib import Path

import pandas as pd

from statefarm.runtime.run_summary import (
    ModelScore,
    TrackedRun,
    format_summary,
    kedro_command,
    out_of_fold_score,
    validation_score,
    verdict_tags,
    where_the_time_went,
)

HISTORY = pd.DataFrame(
    {"epoch": [0, 1, 2], "valid_loss": [1.2, 0.8, 0.9], "valid_loss_clipped": [1.21, 0.81, 0.91],
     "valid_accuracy": [0.5, 0.7, 0.68]}
)  # fmt: skip
REPORT = pd.DataFrame(
    {"scope": ["overall", "driver", "driver"], "log_loss_clipped": [0.7, 0.5, 0.9], "accuracy": [0.75, 0.8, 0.7],
     "coverage": [1.0, None, None]}
)  # fmt: skip


def test_the_summary_names_the_lowest_model_and_its_submission_to_upload():
    baseline = out_of_fold_score("baseline", REPORT, [HISTORY, HISTORY])
    pseudo = out_of_fold_score("pseudo", REPORT.assign(log_loss_clipped=[0.6, 0.5, 0.7]), [HISTORY])
    submissions = {"baseline": Path("b.csv"), "pseudo": Path("p.csv")}
    run = TrackedRun("abc123", "pseudo_label · demo · 2026-12-01 12:00", "7", "sqlite:///mlflow.db")
    text = format_summary([baseline, pseudo], submissions, run)
    lines = text.splitlines()
    assert lines[0] == "Run summary"
    assert lines[2].split()[:5] == ["baseline", "0.7000", "0.750", "2,2", "out"]  # each fold's kept epoch, from 1
    assert lines[3].endswith("<- lowest") and lines[3].split()[0] == "pseudo"
    assert "  Upload: p.csv" in lines and "as submitted" in text
    python, opens = lines[-1].removeprefix("  Open it: `").split(" ", 1)
    assert Path(python).resolve() == Path(sys.executable).resolve()  # this environment's, activated or not
    assert (
        opens
        == "-m statefarm.runtime.mlflow_ui`, then http://127.0.0.1:5000/#/experiments/7/runs/abc123?workflowType=machine_learning"
    )


def test_without_an_out_of_fold_report_each_model_is_scored_on_its_validation_drivers():
    text = format_summary([validation_score("baseline.fold_0", HISTORY)], {}, None)
    assert "baseline.fold_0    0.8100     0.700           2  its validation drivers" in text
    assert "Upload" not in text and "as submitted" not in text and "MLflow" not in text
    server = TrackedRun("abc", "run", "1", "https://mlflow.example.com/")
    assert format_summary([], {}, server).endswith(
        "Open it: https://mlflow.example.com/#/experiments/1/runs/abc?workflowType=machine_learning"
    )


def test_the_time_goes_to_stages_with_each_folds_copies_summed():
    seconds = {"tune_augmentations": 185.0, "baseline.fold_0.train_model": 80.0, "baseline.fold_1.train_model": 82.5,
               "pseudo.fold_10.train_model": 90.0, "index_images": 1.2}  # fmt: skip
    assert where_the_time_went(seconds, most=3) == (
        "  Time: 7m19s in nodes; tune_augmentations 3m05s (42%), baseline.fold_*.train_model 2m42s (37%), "
        "pseudo.fold_*.train_model 1m30s (21%)"
    )


def test_the_recorded_kedro_command_runs_the_same_run_again():
    run_params = {
        "env": "real80x60", "pipeline_names": None, "node_names": ["pseudo.fold_0.train_model"], "tags": None,
        "runtime_params": {"training": {"pseudo_epochs": 2}, "seed": 7}, "only_missing_outputs": True,
        "runner": "<kedro.runner.sequential_runner.SequentialRunner object at 0x7f2fd4854f90>",
        "from_nodes": [], "load_versions": {},
    }  # fmt: skip
    assert kedro_command(run_params) == (
        "kedro run --env=real80x60 --nodes=pseudo.fold_0.train_model --params=training.pseudo_epochs=2,seed=7"
        " --only-missing-outputs"
    )
    assert kedro_command({"env": None, "runner": "ThreadRunner"}) == "kedro run --runner=ThreadRunner"


def test_the_verdict_names_the_lowest_model_its_lead_and_the_file_to_upload():
    scores = [
        ModelScore("baseline", "out of fold, 20 drivers", 0.5718, 0.82, (1,) * 5, as_submitted=True),
        ModelScore("pseudo", "out of fold, 20 drivers", 0.4621, 0.854, (1, 2, 1, 2, 2), as_submitted=True),
    ]
    submissions = {"baseline": Path("b.csv"), "pseudo": Path("p.csv")}
    assert verdict_tags(scores, submissions) == {
        "verdict.model": "pseudo", "verdict.log_loss": "0.4621", "verdict.margin": "0.1097 below baseline",
        "verdict.upload": "p.csv",
    }  # fmt: skip
    assert verdict_tags(scores[:1], {}) == {"verdict.model": "baseline", "verdict.log_loss": "0.5718"}
