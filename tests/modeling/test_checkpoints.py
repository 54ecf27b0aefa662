import os
from pathlib import Path

import pytest
import torch

from statefarm.modeling.checkpoints import CheckpointStore, UnsafeCheckpointError, load_checkpoint, save_atomic


class _RunsCode:
    """Unpickling this calls os.system: what a planted checkpoint would do."""

    def __reduce__(self):
        return os.system, ("touch ran-code",)


def test_a_checkpoint_that_would_run_code_is_refused_and_nothing_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "model.pt"
    torch.save({"model": {"w": torch.zeros(2)}, "model_info": {"name": _RunsCode()}}, path)

    with pytest.raises(UnsafeCheckpointError, match=r"refusing to load .*model\.pt"):
        load_checkpoint(path)
    assert not Path("ran-code").exists()


def test_our_checkpoints_round_trip_with_their_plain_metadata(tmp_path):
    state = {
        "model": {"w": torch.arange(3.0)},
        "model_info": {"name": "statefarm_small_cnn", "num_classes": 10, "train_drivers": ["p002", "p012"]},
        "data_config": {"mean": [0.5, 0.5, 0.5], "std": [0.2, 0.2, 0.2], "input_size": [3, 60, 80]},
        "history": [{"epoch": 0, "valid_loss": 1.5}],
    }
    store = CheckpointStore(tmp_path / "checkpoints")
    store.save("best", state)
    loaded = store.load("best")
    assert loaded["model_info"] == state["model_info"] and loaded["history"] == state["history"]
    assert torch.equal(loaded["model"]["w"], state["model"]["w"])
    save_atomic(state, tmp_path / "model.pt")
    assert load_checkpoint(tmp_path / "model.pt")["data_config"] == state["data_config"]
