import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.pandas import CSVDataset

from statefarm.datasets import FigureDataset
from statefarm.pipelines.lr_find.pipeline import create_pipeline
from tests.conftest import fold_stage_inputs, parameter_datasets

PARAMETERS = {
    "lr_find": {"start_lr": 1e-5, "end_lr": 10.0, "steps": 30, "smoothing": 0.8, "fold": 1},
    "model": {"name": "statefarm_small_cnn", "pretrained": False},
    "optimizer": {"opt": "adamw", "lr": 1e-3, "weight_decay": 0.0},
    "scheduler": {},
    "annealer": {},
    "training": {"epochs": 1, "batch_size": 16},
    "augment": None,
    "runtime": {"device": "cpu", "num_workers": 0},
    "seed": 0,
}


@pytest.mark.slow
def test_lr_find_sweeps_the_recipe_on_the_folds_training_drivers_and_draws_loss_against_rate(prepared_data, tmp_path):
    stage = create_pipeline()
    catalog = DataCatalog(
        {
            **fold_stage_inputs(prepared_data, tmp_path),
            "lr_sweep": CSVDataset(filepath=str(tmp_path / "lr_sweep.csv"), save_args={"index": False}),
            "lr_suggestion": MemoryDataset(),
            "lr_sweep_plot": FigureDataset(filepath=str(tmp_path / "lr_sweep.png")),
            **parameter_datasets(stage, PARAMETERS),
        }
    )
    SequentialRunner().run(stage, catalog)

    sweep = pd.read_csv(tmp_path / "lr_sweep.csv")
    assert list(sweep.columns) == ["step", "lr", "loss", "smoothed_loss"] and 3 <= len(sweep) <= 30
    assert sweep["lr"].is_monotonic_increasing and sweep["lr"].iloc[0] == pytest.approx(1e-5)
    suggestion = {name: metric["value"] for name, metric in catalog.load("lr_suggestion").items()}
    assert set(suggestion) == {"lowest_loss_lr", "suggested_lr", "steepest_lr", "configured_lr"}
    assert suggestion["configured_lr"] == 1e-3 and suggestion["suggested_lr"] == pytest.approx(
        suggestion["lowest_loss_lr"] / 10
    )
    assert (tmp_path / "lr_sweep.png").stat().st_size > 10_000
