"""The learning-rate range test: one sweep of training steps at a rate raised geometrically each step.

The lesson starts training low and raises the rate: this draws why. The loss, smoothed
(a bias-corrected running mean, as fastai's ``lr_find`` smooths it), is flat while the rate
is too low to move the weights, falls fastest a little under the best rate, and blows up
past it; the sweep stops there. The suggested rate is a tenth of the one at the lowest
smoothed loss, the usual reading of the plot. Written here rather than taken from
``torch-lr-finder``, which would need our loaders' device-side normalization, bf16 autocast
and timm's layer-wise rate scales reimplemented around it; these are ``engine``'s own.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
from pydantic import Field, model_validator
from torch import nn
from torch.utils.data import DataLoader

from statefarm.config import Params
from statefarm.modeling import engine
from statefarm.modeling.loaders import DeviceBatches


class LrFindConfig(Params):
    """The sweep: its rates, its length, when it stops, and which fold's training drivers it trains on."""

    start_lr: float = Field(1e-7, gt=0, description="the rate of the first step")
    end_lr: float = Field(1.0, gt=0, description="the rate of the last step, unless the loss blows up first")
    steps: int = Field(100, ge=5, description="training steps of the sweep (batches, repeated when fewer)")
    smoothing: float = Field(0.98, ge=0, lt=1, description="weight of the running loss against each step's")
    divergence: float = Field(4.0, gt=1, description="stop once the smoothed loss exceeds its lowest this many times")
    fold: int = Field(0, ge=0, description="the fold whose training drivers the sweep trains on")

    @model_validator(mode="after")
    def _rising(self) -> LrFindConfig:
        if self.end_lr <= self.start_lr:
            raise ValueError(f"end_lr {self.end_lr:g} must be above start_lr {self.start_lr:g}")
        return self


def sweep_rates(config: LrFindConfig) -> np.ndarray:
    """``steps`` rates from ``start_lr`` to ``end_lr``, each the last times the same factor."""
    return np.geomspace(config.start_lr, config.end_lr, config.steps)


def lr_range_test(
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    runtime: engine.Runtime,
    data_config: dict,
    config: LrFindConfig,
    label_smoothing: float = 0.0,
) -> pd.DataFrame:
    """Train one step per rate of ``sweep_rates``; one row per step: ``step``, ``lr``, ``loss``, ``smoothed_loss``.

    Each parameter group keeps its share of the top rate (timm's layer-wise decay gives the
    stem a fraction of the head's); ``lr`` is the head's. The sweep ends at the last rate,
    at a non-finite loss (not recorded), or once the smoothed loss exceeds ``divergence``
    times its lowest.
    """
    shares = [group["lr"] for group in optimizer.param_groups]
    top = max(shares)
    shares = [share / top for share in shares]
    batches = DeviceBatches(loader, data_config["mean"], data_config["std"], runtime.device, runtime.channels_last)
    stream = iter(batches)
    model.train()
    rows, running, lowest = [], 0.0, math.inf
    for step, lr in enumerate(sweep_rates(config)):
        try:
            inputs, targets = next(stream)
        except StopIteration:  # fewer batches than steps: go round again
            stream = iter(batches)
            inputs, targets = next(stream)
        for group, share in zip(optimizer.param_groups, shares, strict=True):
            group["lr"] = float(lr) * share
        with runtime.autocast():
            logits = model(inputs)
        loss = engine.loss_fn(logits, targets, label_smoothing)
        detached = loss.detach()
        value = float(detached)
        if not math.isfinite(value):
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step(lambda detached=detached: detached)  # Eve reads the loss; the others ignore it
        running = config.smoothing * running + (1 - config.smoothing) * value
        smoothed = running / (1 - config.smoothing ** (step + 1))
        rows.append({"step": step, "lr": float(lr), "loss": value, "smoothed_loss": smoothed})
        lowest = min(lowest, smoothed)
        if smoothed > config.divergence * lowest:
            break
    return pd.DataFrame(rows, columns=["step", "lr", "loss", "smoothed_loss"])


def suggest_lr(sweep: pd.DataFrame) -> dict[str, float]:
    """The rate at the lowest smoothed loss, a tenth of it (the rate to train at), and the rate where the
    smoothed loss falls fastest against the log of the rate.

    Raises:
        ValueError: The sweep has too few steps to read (its first loss was not finite).
    """
    if len(sweep) < 3:
        raise ValueError(f"the learning-rate sweep recorded {len(sweep)} step(s): too few to suggest a rate")
    lowest = float(sweep.loc[sweep["smoothed_loss"].idxmin(), "lr"])
    slope = np.gradient(sweep["smoothed_loss"].to_numpy(), np.log(sweep["lr"].to_numpy()))
    steepest = float(sweep["lr"].iloc[slope.argmin()])
    return {"lowest_loss_lr": lowest, "suggested_lr": lowest / 10, "steepest_lr": steepest}
