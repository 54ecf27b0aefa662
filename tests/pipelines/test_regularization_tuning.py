import pytest
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.pandas import CSVDataset

from statefarm.data.splits import SplitConfig, assign_folds
from statefarm.datasets import FigureDataset, OptionalYAMLDataset
from statefarm.pipelines.regularization_tuning.pipeline import create_pipeline
from tests.conftest import parameter_datasets

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
    image_index, cache = prepared_data
    labelled = image_index[image_index["split"] == "train"]
    stage = create_pipeline()
    catalog = DataCatalog(
        {
            "image_cache": MemoryDataset(cache, copy_mode="assign"),
            "image_index": MemoryDataset(image_index),
            "driver_folds": MemoryDataset(assign_folds(labelled, SplitConfig(n_folds=3), seed=0)),
            "tuned_augmentations": OptionalYAMLDataset(filepath=str(tmp_path / "absent.yml")),
            "regularization_scan": CSVDataset(filepath=str(tmp_path / "scan.csv"), save_args={"index": False}),
            "tuned_regularization": OptionalYAMLDataset(filepath=str(tmp_path / "tuned_regularization.yml")),
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
