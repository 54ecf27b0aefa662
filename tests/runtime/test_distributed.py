"""Data-parallel training: two processes on the CPU (gloo), as several GPUs would run it (NCCL)."""

import math
import os

import mlflow
import numpy as np
import pytest
import torch

from statefarm.data.splits import SplitConfig, assign_folds, split_fold
from statefarm.modeling import engine
from statefarm.modeling.checkpoints import CheckpointStore
from statefarm.modeling.loaders import CachedImageDataset, make_loader
from statefarm.modeling.models import ModelConfig
from statefarm.modeling.optim import AnnealerConfig, OptimizerConfig, SchedulerConfig
from statefarm.modeling.training import (
    Recipe,
    TrainingConfig,
    fit_on_rows,
    labelled_rows,
    load_classifier,
    train_classifier,
)
from statefarm.runtime.config import RuntimeConfig

# Two processes on global batches of 16 see other shuffles than one process, so their
# validation losses differ by noise alone: on this tiny problem well within this much.
TOLERANCE = 0.15


@pytest.fixture(scope="module")
def split(prepared_data):
    image_index, _ = prepared_data
    train = image_index[image_index["split"] == "train"]
    return split_fold(train, assign_folds(train, SplitConfig(n_folds=3), seed=0), fold=0)


def _recipe(epochs=2, resume=False):
    training = TrainingConfig(epochs=epochs, batch_size=16, resume=resume)
    return Recipe(
        ModelConfig(name="statefarm_small_cnn"), OptimizerConfig(opt="adamw", lr=1e-3), SchedulerConfig(),
        AnnealerConfig(), training,
    )  # fmt: skip


def _on(devices):
    return RuntimeConfig(device="cpu", num_workers=0, devices=devices)


class _Interrupted(Exception):
    pass


@pytest.mark.slow
def test_two_processes_train_checkpoint_once_and_log_like_one(prepared_data, split, tmp_path, caplog):
    image_index, cache = prepared_data
    _, one, _ = train_classifier(
        cache, image_index, split, _recipe(), _on(1), None, CheckpointStore(tmp_path / "one"), 0, 1e-3
    )
    with mlflow.start_run() as parent, caplog.at_level("INFO", logger="statefarm.modeling.training"):
        model, two, predictions = train_classifier(
            cache, image_index, split, _recipe(), _on(2), None, CheckpointStore(tmp_path / "two"), 0, 1e-3, "model"
        )
    share = max(1, os.cpu_count() // 2)  # each process gets half the cores, and the log line says so
    assert f"on cpu ({share} thread{'s' * (share > 1)}) x 2 processes" in caplog.text
    assert list(two["epoch"]) == [0, 1] and math.isfinite(two["valid_loss"].iloc[-1])
    assert abs(two["valid_loss"].iloc[-1] - one["valid_loss"].iloc[-1]) < TOLERANCE
    assert sorted(path.name for path in (tmp_path / "two").iterdir()) == ["best.pt", "last.pt"]  # one writer
    assert model["epoch"] == int(two["valid_loss"].idxmin())
    # Each process predicted half of the validation images; gathered, they are what the saved model says of each.
    valid = labelled_rows(image_index, split["valid_drivers"])
    assert list(predictions["img"]) == list(valid["img"])
    loader = make_loader(
        CachedImageDataset(cache.images, cache.rows_of(list(valid["img"])), valid["label"].to_numpy()),
        32, False, 0, torch.device("cpu"), 0,
    )  # fmt: skip
    runtime = engine.Runtime(torch.device("cpu"))
    logits, _ = engine.predict_logits(load_classifier(model), loader, runtime, model["data_config"])
    np.testing.assert_allclose(predictions.filter(like="logit_").to_numpy(), logits.numpy(), atol=1e-4)

    # Rank 0, another process, logged each epoch to the model's child run.
    [child] = mlflow.search_runs(
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'", output_format="list"
    )
    history = mlflow.MlflowClient().get_metric_history(child.info.run_id, "valid_loss")
    assert [metric.step for metric in history] == [1, 2]  # epochs counted from 1, as the log counts them
    assert [metric.value for metric in history] == pytest.approx(list(two["valid_loss"]))


@pytest.mark.slow
def test_a_run_stopped_on_one_process_resumes_on_two(prepared_data, split, tmp_path):
    image_index, cache = prepared_data
    train, valid = (
        labelled_rows(image_index, split["train_drivers"]),
        labelled_rows(image_index, split["valid_drivers"]),
    )
    store, done = CheckpointStore(tmp_path), []

    def stop_after_two_epochs(metrics, epoch):
        done.append(metrics["valid_loss"])
        if epoch == 2:
            raise _Interrupted

    with pytest.raises(_Interrupted):
        fit_on_rows(cache, train, valid, _recipe(epochs=3), _on(1), None, store, 0, 1e-3, stop_after_two_epochs)
    resumed = fit_on_rows(cache, train, valid, _recipe(epochs=3, resume=True), _on(2), None, store, 0, 1e-3)
    assert [row["epoch"] for row in resumed.history] == [0, 1, 2]  # the first two from the checkpoint
    assert [row["valid_loss"] for row in resumed.history[:2]] == pytest.approx(done)
    assert store.load("last")["epoch"] == 2
