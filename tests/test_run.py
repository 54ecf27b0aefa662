"""Smoke test: the project runs through ``KedroSession`` as ``kedro run --env=demo`` does."""

import json
import shutil

import mlflow
import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from tests.conftest import REPO_ROOT

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
    "training": {
        "epochs": 2, "batch_size": 32, "num_workers": 0, "device": "cpu", "amp": False,
        "channels_last": False, "compile": False, "resume": False, "use_tuned_augmentations": True,
    },
}  # fmt: skip

# Replaces conf/demo's grid in the copy: runtime parameters merge into dicts, and the
# full demo grid (28 trials) is too slow for a test.
TINY_GRID = """
augment_tuning:
  margin: 0.0
  model: {name: statefarm_small_cnn}
  training: {epochs: 1, batch_size: 32, num_workers: 0, device: cpu}
  candidates:
    shift: {transform: Affine, argument: translate_percent, values: [[-0.05, 0.05]]}
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A copy of the project's configuration in an empty folder, as a fresh checkout has it."""
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    shutil.copytree(REPO_ROOT / "conf", tmp_path / "conf", ignore=shutil.ignore_patterns("local"))
    (tmp_path / "conf" / "local").mkdir()
    (tmp_path / "src").mkdir()  # the package itself is installed
    (tmp_path / "conf" / "demo" / "parameters_augment_tuning.yml").write_text(TINY_GRID)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")  # use conf/base/mlflow.yml, as a user would
    bootstrap_project(tmp_path)
    return tmp_path


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


def _run(project, **kwargs):
    with KedroSession.create(project_path=project, env="demo", runtime_params=SMALL_DEMO) as session:
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

    _run(project)  # __default__ = pseudo_label: the whole chain
    assert (project / "data" / "05_model_input" / "demo" / "tuned_augmentations.yml").is_file()
    index = pd.read_parquet(project / "data" / "02_intermediate" / "demo" / "image_index.parquet")
    assert len(index) == 180 and index["valid"].all()
    assert (project / "data" / "02_intermediate" / "demo" / "image_cache" / "images.npy").is_file()
    split = json.loads((project / "data" / "05_model_input" / "demo" / "driver_split.json").read_text())
    assert not set(split["train_drivers"]) & set(split["valid_drivers"])
    assert (project / "data" / "05_model_input" / "demo" / "sample.parquet").is_file()
    assert (project / "data" / "06_models" / "demo" / "baseline" / "model.pt").is_file()
    [submission_file] = (project / "data" / "09_submissions" / "demo").glob("baseline_submission.csv/*/*.csv")
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
    assert params["split.n_folds"] == "4" and params["image_cache.image_size"] == "[60, 80]"
    assert params["model.name"] == "statefarm_small_cnn" and params["training.epochs"] == "2"
    assert not [key for key in params if any(s in key.lower() for s in ("password", "token", "secret"))]
    client = mlflow.MlflowClient()
    history = client.get_metric_history(runs[1].info.run_id, "baseline.valid_loss")
    assert [metric.step for metric in history] == [0, 1]  # one run holds every epoch
    artifacts = {a.path for a in client.list_artifacts(runs[1].info.run_id, "baseline")}
    assert {
        "baseline/model.pt", "baseline/learning_curves.png", "baseline/confusion_matrix.png",
        "baseline/validation_report.csv", "baseline/training_history.csv", "baseline/baseline_submission.csv",
    } <= artifacts  # fmt: skip
    assert "baseline.calibration.temperature" in runs[1].data.metrics
    assert [m.step for m in client.get_metric_history(runs[1].info.run_id, "pseudo.valid_loss")] == [0, 1]
    assert "pseudo/pseudo_submission.csv" in {a.path for a in client.list_artifacts(runs[1].info.run_id, "pseudo")}
    assert {"comparison.baseline.log_loss", "comparison.pseudo.log_loss"} <= set(runs[1].data.metrics)
    assert runs[1].data.metrics["pseudo_labels.kept_fraction"] == 1.0
    comparison = pd.read_csv(project / "data" / "08_reporting" / "demo" / "model_comparison.csv")
    assert comparison["model"].tolist() == ["baseline", "pseudo"]
    [pseudo_file] = (project / "data" / "09_submissions" / "demo").glob("pseudo_submission.csv/*/*.csv")
    assert sorted(pd.read_csv(pseudo_file)["img"]) == sorted(submission["img"])
    trials = mlflow.search_runs(
        experiment_names=["statefarm"], filter_string=f"tags.mlflow.parentRunId = '{runs[1].info.run_id}'"
    )
    names = sorted(trials["tags.mlflow.runName"])  # nested under the kedro run, one per trial
    assert names in (["baseline", "shift=[-0.05, 0.05]"], ["baseline", "combined", "shift=[-0.05, 0.05]"])

    # Resuming the chain: everything is persisted, so no training, tuning or submission node runs.
    before = _mtimes(project)
    assert len(before) >= 8
    _run(project, only_missing_outputs=True)
    assert _mtimes(project) == before
