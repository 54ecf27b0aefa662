"""The learning-rate range test: rates rising by one factor, the loss falling then blowing up, the sweep stopped."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from statefarm.modeling import engine
from statefarm.modeling.lr_finder import LrFindConfig, lr_range_test, suggest_lr, sweep_rates

CPU = engine.Runtime(torch.device("cpu"), amp=False, channels_last=False)
DATA_CONFIG = {"mean": (0.0, 0.0, 0.0), "std": (1 / 255, 1 / 255, 1 / 255)}  # the inputs pass unchanged


def _learnable(images: int = 640) -> DataLoader:
    """A bright pixel per class, under noise, and a quarter of the labels drawn at random: a loss that falls,
    and cannot fall to zero, so that too high a rate shows as a blow-up."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(images) % 10
    inputs = torch.randn(images, 3, 2, 2, generator=generator)
    inputs[torch.arange(images), labels % 3, labels // 5, (labels // 3) % 2] += 4.0
    labels[::4] = torch.randint(0, 10, (len(labels[::4]),), generator=generator)
    return DataLoader(TensorDataset(inputs, labels), batch_size=32, shuffle=True, generator=generator)


def test_the_sweep_raises_the_rate_by_one_factor_keeps_layer_shares_and_stops_when_the_loss_blows_up():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 10))
    optimizer = torch.optim.SGD(
        [{"params": model[1].parameters(), "lr": 0.1}, {"params": model[3].parameters(), "lr": 1.0}], lr=1.0
    )  # a stem at a tenth of the head, as timm's layer-wise decay would set it
    config = LrFindConfig(start_lr=1e-4, end_lr=1e4, steps=80, smoothing=0.9)
    sweep = lr_range_test(model, _learnable(), optimizer, CPU, DATA_CONFIG, config)

    assert 10 < len(sweep) < 80  # stopped well before the last rate: the loss blew up
    assert sweep["step"].tolist() == list(range(len(sweep)))
    ratios = sweep["lr"].to_numpy()[1:] / sweep["lr"].to_numpy()[:-1]
    assert np.allclose(ratios, 1e8 ** (1 / 79)) and sweep["lr"].iloc[0] == pytest.approx(1e-4)
    assert sweep["lr"].tolist() == pytest.approx(sweep_rates(config)[: len(sweep)].tolist())
    assert [group["lr"] for group in optimizer.param_groups] == pytest.approx(
        [0.1 * sweep["lr"].iloc[-1], sweep["lr"].iloc[-1]]
    )  # each group kept its share of the head's rate
    smoothed = sweep["smoothed_loss"]
    assert smoothed.iloc[0] == pytest.approx(sweep["loss"].iloc[0])  # bias-corrected: no pull towards 0 at the start
    assert smoothed.min() < smoothed.iloc[0] - 0.4  # it learned at some rate
    assert smoothed.iloc[-1] > config.divergence * smoothed.min()  # and the last step is the blow-up
    suggestion = suggest_lr(sweep)
    lowest = sweep.loc[smoothed.idxmin(), "lr"]
    assert suggestion["lowest_loss_lr"] == lowest and suggestion["suggested_lr"] == pytest.approx(lowest / 10)
    assert 1e-4 < suggestion["steepest_lr"] <= lowest


def test_a_sweep_that_cannot_be_read_and_rates_that_do_not_rise_are_refused():
    with pytest.raises(ValueError, match="end_lr 1e-05 must be above start_lr 0.001"):
        LrFindConfig(start_lr=1e-3, end_lr=1e-5)
    short = lr_range_test(
        nn.Sequential(nn.Flatten(), nn.Linear(12, 10)), _learnable(16), torch.optim.SGD([nn.Parameter(torch.zeros(1))]),
        CPU, DATA_CONFIG, LrFindConfig(steps=5),
    )  # fmt: skip
    assert len(short) == 5  # fewer batches than steps: the loader goes round again
    with pytest.raises(ValueError, match="recorded 2 step"):
        suggest_lr(short.iloc[:2])
