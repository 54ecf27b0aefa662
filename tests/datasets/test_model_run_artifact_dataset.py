"""A model's files land in its own MLflow child run, beside its curves."""

import mlflow
import pandas as pd
import pytest

from statefarm.datasets import ModelRunArtifactDataset
from statefarm.runtime.tracking import child_run


def _history(tmp_path, model):
    return ModelRunArtifactDataset(
        {"type": "pandas.CSVDataset", "filepath": str(tmp_path / model / "training_history.csv")}, model=model
    )


def test_a_models_file_goes_to_its_own_child_run_and_elsewhere_to_the_parent_under_its_name(tmp_path):
    history = pd.DataFrame({"epoch": [0, 1], "valid_loss": [0.9, 0.7]})
    with mlflow.start_run() as parent:
        with child_run("baseline.fold_0", {}, {"model": "baseline.fold_0", "stage": "training"}):
            pass
        with child_run("augment_tuning", {}, {"stage": "augment_scan"}):  # another child, of no model
            pass
        _history(tmp_path, "baseline.fold_0").save(history)  # saved after the training node's run ended
        _history(tmp_path, "pseudo.fold_0").save(history)  # no run of that model (kept by --only-missing-outputs)
    client = mlflow.MlflowClient()
    [model_run] = mlflow.search_runs(filter_string="tags.model = 'baseline.fold_0'", output_format="list")
    assert [a.path for a in client.list_artifacts(model_run.info.run_id)] == ["training_history.csv"]
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} == {"pseudo.fold_0"}
    assert [a.path for a in client.list_artifacts(parent.info.run_id, "pseudo.fold_0")] == [
        "pseudo.fold_0/training_history.csv"
    ]
    pd.testing.assert_frame_equal(_history(tmp_path, "baseline.fold_0").load(), history)


def test_outside_a_run_the_file_is_only_saved_and_a_dataset_without_a_file_is_refused(tmp_path):
    dataset = _history(tmp_path, "baseline.fold_0")
    dataset.save(pd.DataFrame({"epoch": [0]}))
    assert dataset.exists() and mlflow.active_run() is None
    with pytest.raises(ValueError, match="'baseline.fold_0' wraps a dataset without a filepath"):
        ModelRunArtifactDataset({"type": "MemoryDataset"}, model="baseline.fold_0")
