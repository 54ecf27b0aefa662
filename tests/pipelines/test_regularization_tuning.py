import pytest
import yaml
from kedro.io import DataCatalog
from kedro.runner import SequentialRunner
from kedro_datasets.pandas import CSVDataset

from statefarm.datasets import FigureDataset
from statefarm.pipelines.regularization_tuning.pipeline import create_pipeline
from tests.conftest import fold_stage_inputs, parameter_datasets

PARAMETERS = {
    "regularization_tuning": {
        "folds": [0, 2],
        "margin": 0.0,
        "candidates": {"weight_decay": {"key": "optimizer.weight_decay", "values": [0.0, 0.3]}},
    },
    "model": {"name": "statefarm_small_cnn", "pretrained": False},
    "optimizer": {"opt": "adamw", "lr": 1e-3, "weight_decay": 0.0},
    "scheduler": {},
    "annealer": {},
    "training": {"epochs": 1, "batch_size": 16},
    "augment": None,
    "runtime": {"device": "cpu", "num_workers": 0},
    "seed": 0,
    "submission": {"clip": 0.001},
    "inference": {"calibrate": True},
}


@pytest.mark.slow
def test_regularization_tuning_trains_each_arm_on_the_named_folds_and_writes_a_readable_choice(prepared_data, tmp_path):
    stage = create_pipeline()
    catalog = DataCatalog(
        {
            **fold_stage_inputs(prepared_data, tmp_path),  # tuned_regularization.yml: what this stage writes
            "regularization_scan": CSVDataset(filepath=str(tmp_path / "scan.csv"), save_args={"index": False}),
            "regularization_scan_plot": FigureDataset(filepath=str(tmp_path / "scan.png")),
            **parameter_datasets(stage, PARAMETERS),
        }
    )
    SequentialRunner().run(stage, catalog)

    scan = catalog.load("regularization_scan")
    assert scan["arm"].tolist()[:2] == ["reference", "weight_decay=0.3"]  # 0.0 is the reference's own
    assert (scan["folds"] == 2).all()  # folds 0 and 2 only
    tuned = yaml.safe_load((tmp_path / "tuned_regularization.yml").read_text())  # readable as training reads it
    assert set(tuned) >= {"changes", "reference_oof_log_loss", "oof_log_loss", "chosen"}
    assert tuned["calibrated"] is True  # the arms scored as the chain scores what it submits
    assert tuned["changes"] in ({}, {"optimizer.weight_decay": 0.3})
    assert (tmp_path / "scan.png").stat().st_size > 0
