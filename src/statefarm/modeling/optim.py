"""Optimizers by name (timm's factory) and the two from the lesson that no library ships.

``Eve`` and ``GradientNormAnnealer`` are written here by hand; everything else
comes from ``timm.optim.create_optimizer_v2`` and ``timm.scheduler.create_scheduler_v2``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, Literal

import torch
from pydantic import Field, field_validator
from timm.optim import create_optimizer_v2, list_optimizers, param_groups_weight_decay
from timm.scheduler import create_scheduler_v2
from torch import nn

from statefarm.config import Params


class OptimizerConfig(Params):
    """Keys match ``timm.optim.create_optimizer_v2``; ``opt: eve`` selects ``Eve``."""

    opt: str = "adamw"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    layer_decay: float | None = Field(
        None,
        gt=0,
        le=1,
        description="timm's layer-wise rate decay: each layer group from the head down trains at this factor of "
        "the one above, so pretrained early layers move least; null: one rate for every layer",
    )

    @field_validator("opt")
    @classmethod
    def _known_optimizer(cls, opt: str) -> str:
        name = opt.lower().removeprefix("lookahead_")
        if name != "eve" and name not in list_optimizers():
            raise ValueError(f"unknown optimizer {opt!r}; use eve or one of timm's: {', '.join(list_optimizers())}")
        return opt


class SchedulerConfig(Params):
    """Keys match ``timm.scheduler.create_scheduler_v2``; ``sched: null`` keeps the rate constant.

    The warm-up starts low (``warmup_lr``) and rises to the optimizer's rate over
    ``warmup_epochs``, as the lesson advises. The schedules are stepped every update;
    timm's ``plateau``, which steps once an epoch on a metric, is not offered.
    """

    sched: Literal["cosine", "tanh", "poly", "step", "multistep"] | None = "cosine"
    warmup_epochs: float = Field(1.0, ge=0, description="may be a fraction: one-epoch runs need one")
    warmup_lr: float = Field(1e-5, ge=0)
    min_lr: float = Field(0.0, ge=0)
    decay_epochs: float = Field(2.0, gt=0, description="step: multiply the rate by decay_rate every this many epochs")
    decay_milestones: list[int] = Field([4, 6], description="multistep: the epochs at which to decay")
    decay_rate: float = Field(0.1, gt=0, le=1)


class AnnealerConfig(Params):
    """The lesson's gradient-norm annealer; ``enabled: false`` turns it off."""

    enabled: bool = False
    factor: float = Field(2.0, gt=1, description="anneal when an epoch's sum of squared gradients grows this much")
    divisor: float = Field(4.0, gt=1, description="divide the learning rate by this")


class Eve(torch.optim.Optimizer):
    """Adam whose step also shrinks as the loss changes a lot (Koushik & Hayashi, 2016).

    Keeps a smoothed loss ``f_hat`` whose ratio to the previous one is clipped
    to ``[1/(K+1), k+1]`` when the loss improved and ``[k+1, K+1]`` when it did
    not; the relative change ``r`` of ``f_hat`` feeds a running average ``d``
    (decay ``beta3``), and the Adam step is divided by ``d``. The loss must be
    positive; pass it through ``step(closure)``.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float, float] = (0.9, 0.999, 0.999),
        thresholds: tuple[float, float] = (0.1, 10.0),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        if lr <= 0:
            raise ValueError(f"Eve: lr must be positive, got {lr}")
        if not all(0 <= beta < 1 for beta in betas):
            raise ValueError(f"Eve: betas must be in [0, 1), got {betas}")
        small, large = thresholds
        if not 0 < small < large:
            raise ValueError(f"Eve: thresholds must satisfy 0 < k < K, got {thresholds}")
        defaults = {"lr": lr, "betas": betas, "thresholds": thresholds, "eps": eps, "weight_decay": weight_decay}
        super().__init__(params, defaults)
        # The loss tracking is global; it lives in the first group so state_dict() saves it.
        self.param_groups[0].update({"eve_step": 0, "f_hat": None, "d": 1.0})

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor | float] | None = None) -> torch.Tensor | float | None:
        if closure is None:
            raise ValueError("Eve needs the loss: call optimizer.step(closure) with a closure that returns it")
        with torch.enable_grad():
            loss = closure()
        f = float(loss)
        if not f > 0 or not math.isfinite(f):
            raise ValueError(f"Eve needs a positive, finite loss, got {f}")

        eve = self.param_groups[0]
        eve["eve_step"] += 1
        t = eve["eve_step"]
        beta3 = self.param_groups[0]["betas"][2]
        small, large = self.param_groups[0]["thresholds"]
        if eve["f_hat"] is None:
            eve["f_hat"], eve["d"] = f, 1.0
        else:
            previous = eve["f_hat"]
            low, high = (small + 1, large + 1) if f >= previous else (1 / (large + 1), 1 / (small + 1))
            f_hat = min(max(low, f / previous), high) * previous
            r = abs(f_hat - previous) / min(f_hat, previous)
            eve["d"] = beta3 * eve["d"] + (1 - beta3) * r
            eve["f_hat"] = f_hat

        for group in self.param_groups:
            beta1, beta2, _ = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                grad = param.grad
                if group["weight_decay"]:
                    grad = grad.add(param, alpha=group["weight_decay"])
                state = self.state[param]
                if not state:
                    state["exp_avg"] = torch.zeros_like(param)
                    state["exp_avg_sq"] = torch.zeros_like(param)
                state["exp_avg"].mul_(beta1).add_(grad, alpha=1 - beta1)
                state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                m_hat = state["exp_avg"] / (1 - beta1**t)
                v_hat = state["exp_avg_sq"] / (1 - beta2**t)
                param.addcdiv_(m_hat, v_hat.sqrt().mul_(eve["d"]).add_(group["eps"]), value=-group["lr"])
        return loss


class GradientNormAnnealer:
    """Divide the learning rate when an epoch's gradients blow up (from the lesson).

    After each epoch, compare the sum over its steps of the squared gradient norm
    with the previous epoch's; when it has grown by ``factor`` or more, divide
    every group's learning rate by ``divisor``. The rate never goes back up. The
    cut is stored as the group's ``lr_scale``, which timm's schedulers multiply
    into the rate they set, so it composes with warm-up and cosine schedules.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, factor: float = 2.0, divisor: float = 4.0) -> None:
        self.optimizer = optimizer
        self.factor = factor
        self.divisor = divisor
        self.previous: float | None = None
        self.current = 0.0

    def observe(self, parameters: Iterable[nn.Parameter]) -> None:
        """Add this step's squared gradient norm; call after ``backward``."""
        grads = [p.grad.detach() for p in parameters if p.grad is not None]
        if grads:
            self.current += float(torch.stack([g.float().pow(2).sum() for g in grads]).sum())

    def end_epoch(self) -> bool:
        """Close the epoch; return True when the learning rate was cut."""
        cut = self.previous is not None and self.current >= self.factor * self.previous
        if cut:
            for group in self.optimizer.param_groups:
                group["lr_scale"] = group.get("lr_scale", 1.0) / self.divisor
                group["lr"] /= self.divisor
        self.previous, self.current = self.current, 0.0
        return cut

    def state_dict(self) -> dict[str, Any]:
        return {"previous": self.previous, "current": self.current}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.previous, self.current = state["previous"], state["current"]


def create_optimizer(model: nn.Module, config: OptimizerConfig) -> torch.optim.Optimizer:
    """``Eve`` for ``opt: eve``, otherwise timm's optimizer of that name.

    As timm's optimizers do, ``Eve`` leaves biases and normalization weights undecayed.
    ``layer_decay`` gives each of the model's layer groups its ``lr_scale``, which timm's
    schedulers multiply into the rate they set.
    """
    if config.opt.lower() == "eve":
        if config.layer_decay is not None:
            raise ValueError("optimizer.layer_decay is timm's and does not apply to opt: eve; set it to null")
        groups = param_groups_weight_decay(model, config.weight_decay) if config.weight_decay else model.parameters()
        return Eve(groups, lr=config.lr, weight_decay=config.weight_decay)
    optimizer = create_optimizer_v2(
        model,
        opt=config.opt,
        lr=config.lr,
        weight_decay=config.weight_decay,
        momentum=config.momentum,
        layer_decay=config.layer_decay,
    )
    if config.layer_decay is not None and len({group["lr_scale"] for group in optimizer.param_groups}) < 2:
        raise ValueError(
            f"optimizer.layer_decay: {type(model).__name__} has no layer groups (timm's group_matcher), "
            "so every layer would train at one rate; set it to null"
        )
    return optimizer


def create_scheduler(optimizer: torch.optim.Optimizer, config: SchedulerConfig, epochs: int, steps_per_epoch: int):
    """timm's scheduler, stepped per update; ``None`` when ``sched`` is null (constant rate)."""
    if config.sched is None:
        return None
    scheduler, _ = create_scheduler_v2(
        optimizer,
        sched=config.sched,
        num_epochs=epochs,
        warmup_epochs=config.warmup_epochs,
        warmup_lr=config.warmup_lr,
        min_lr=config.min_lr,
        decay_epochs=config.decay_epochs,
        decay_milestones=config.decay_milestones,
        decay_rate=config.decay_rate,
        step_on_epochs=False,
        updates_per_epoch=steps_per_epoch,
    )
    return scheduler
