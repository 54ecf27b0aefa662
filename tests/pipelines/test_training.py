import numpy as np
import pytest
import torch
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.pandas import ParquetDataset

from statefarm.data.splits import SplitConfig, assign_folds, split_fold
from statefarm.datasets import CheckpointStoreDataset, OptionalYAMLDataset
from statefarm.evaluation.cross_validation import LOGITS
from statefarm.pipelines.inference.pipeline import create_pipeline as inference_pipeline
from statefarm.pipelines.training.pipeline import create_pipeline as training_pipeline
from tests.conftest import parameter_datasets

PARAMETERS = {
    "model": {"name": "statefarm_small_cnn", "pretrained": False},
    "optimizer": {"opt": "adamw", "lr": 1e-3},
    "scheduler": {},
    "annealer": {},
    "training": {"epochs": 2, "batch_size": 16},
    "augment": [{"Affine": {"translate_percent": [-0.02, 0.02], "p": 0.5}}],
    "seed": 0,
    "submission": {"clip": 0.001},
    "runtime": {"device": "cpu", "num_workers": 0},
    "inference": {"batch_size": 8, "neighbours": {"space": "model", "max_neighbours": 3, "search_dims": None}},
}


@pytest.mark.slow
def test_a_fold_trains_on_its_drivers_then_predicts_every_readable_test_image(prepared_data, tmp_path):
    image_index, cache = prepared_data
    train = image_index[image_index["split"] == "train"]
    split = split_fold(train, assign_folds(train, SplitConfig(n_folds=3), seed=0), fold=0)
    kept = {
        f"baseline.fold_0.{name}": ParquetDataset(filepath=str(tmp_path / f"{name}.parquet"))
        for name in ("training_history", "valid_predictions", "test_logits", "test_neighbours")
    }
    stage = training_pipeline("baseline.fold_0", "fold_0.driver_split") + inference_pipeline("baseline.fold_0")
    catalog = DataCatalog(
        {
            "image_cache": MemoryDataset(cache, copy_mode="assign"),
            "image_index": MemoryDataset(image_index),
            "fold_0.driver_split": MemoryDataset(split),
            "baseline.fold_0.checkpoints": CheckpointStoreDataset(path=str(tmp_path / "checkpoints")),
            "tuned_augmentations": OptionalYAMLDataset(filepath=str(tmp_path / "absent.yml")),
            "tuned_regularization": OptionalYAMLDataset(filepath=str(tmp_path / "tuned_regularization.yml")),
            "test_pixel_neighbours": MemoryDataset(None),
            "baseline.fold_0.model": MemoryDataset(copy_mode="assign"),
            **parameter_datasets(stage, PARAMETERS),
            **kept,
        }
    )
    catalog.save("tuned_regularization", {"changes": {"optimizer.weight_decay": 0.3}})  # regularization_tuning's
    SequentialRunner().run(stage, catalog)

    history = catalog.load("baseline.fold_0.training_history")
    assert list(history["epoch"]) == [0, 1] and np.isfinite(history["valid_loss"]).all()
    valid = catalog.load("baseline.fold_0.valid_predictions")
    assert set(valid["subject"]) == set(split["valid_drivers"])  # validated on its held-out drivers only
    assert sorted(path.name for path in (tmp_path / "checkpoints").iterdir()) == ["best.pt", "last.pt"]
    best = torch.load(tmp_path / "checkpoints" / "best.pt", weights_only=True)
    assert best["model_info"]["train_drivers"] == sorted(split["train_drivers"])
    assert best["run"]["optimizer"]["weight_decay"] == 0.3  # the main model takes the tuned regularization

    logits = catalog.load("baseline.fold_0.test_logits")
    test = image_index[(image_index["split"] == "test") & image_index["valid"]]
    assert list(logits["img"]) == list(test["img"])
    np.testing.assert_allclose(np.exp(logits.loc[:, LOGITS].to_numpy()).sum(axis=1), 1.0, rtol=1e-5)
    neighbours = catalog.load("baseline.fold_0.test_neighbours")
    assert list(neighbours["img"]) == list(test["img"]) and "neighbour_2" in neighbours  # in the model's features
