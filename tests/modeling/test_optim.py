import math

import numpy as np
import pytest
import timm
import torch
from timm.scheduler import CosineLRScheduler
from torch import nn

from statefarm.config import parse_params
from statefarm.modeling.optim import (
    Eve,
    GradientNormAnnealer,
    OptimizerConfig,
    SchedulerConfig,
    create_optimizer,
    create_scheduler,
)


def _loss(theta: torch.Tensor) -> torch.Tensor:
    return theta[0] ** 2 + 2 * theta[1] ** 2 + 1  # positive, as Eve requires


def _eve_by_hand(theta, steps, lr=0.1, b1=0.9, b2=0.999, b3=0.999, k=0.1, K=10.0, eps=1e-8):
    """Eve from the paper's Algorithm 1, written out in numpy."""
    theta = np.array(theta, dtype=np.float64)
    m = v = np.zeros(2)
    f_hat = d = None
    for t in range(1, steps + 1):
        f = theta[0] ** 2 + 2 * theta[1] ** 2 + 1
        g = np.array([2 * theta[0], 4 * theta[1]])
        if t == 1:
            f_hat, d = f, 1.0
        else:
            low, high = (k + 1, K + 1) if f >= f_hat else (1 / (K + 1), 1 / (k + 1))
            c = min(max(low, f / f_hat), high)
            new = c * f_hat
            r = abs(new - f_hat) / min(new, f_hat)
            d = b3 * d + (1 - b3) * r
            f_hat = new
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        theta = theta - lr * m_hat / (d * np.sqrt(v_hat) + eps)
    return theta


def _run_eve(theta, steps, lr=0.1):
    param = torch.nn.Parameter(torch.tensor(theta, dtype=torch.float64))
    optimizer = Eve([param], lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = _loss(param)
        loss.backward()
        optimizer.step(lambda loss=loss: loss.detach())
    return param.detach().numpy(), optimizer


@pytest.mark.parametrize("steps", [1, 2, 5, 30])
def test_eve_matches_the_algorithm_step_by_step(steps):
    theta, _ = _run_eve([1.0, -2.0], steps)
    np.testing.assert_allclose(theta, _eve_by_hand([1.0, -2.0], steps), rtol=1e-10, atol=1e-12)


def test_eve_first_step_is_adams():
    theta, _ = _run_eve([1.0, -2.0], 1)
    param = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
    adam = torch.optim.Adam([param], lr=0.1)
    _loss(param).backward()
    adam.step()
    np.testing.assert_allclose(theta, param.detach().numpy(), rtol=1e-12)


def test_eve_state_survives_a_checkpoint():
    _, optimizer = _run_eve([1.0, -2.0], 3)
    state = optimizer.state_dict()
    param = torch.nn.Parameter(torch.tensor([0.0, 0.0], dtype=torch.float64))
    restored = Eve([param], lr=0.1)
    restored.load_state_dict(state)
    assert restored.param_groups[0]["eve_step"] == 3
    assert restored.param_groups[0]["f_hat"] == optimizer.param_groups[0]["f_hat"]


def test_eve_needs_the_loss():
    param = torch.nn.Parameter(torch.ones(2))
    _loss(param).backward()
    with pytest.raises(ValueError, match="closure"):
        Eve([param]).step()


def _annealer_with_grad_sums(sums, lr=0.1, scheduler=False):
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=lr)
    sched = CosineLRScheduler(optimizer, t_initial=100, lr_min=lr) if scheduler else None  # flat cosine
    annealer = GradientNormAnnealer(optimizer, factor=2.0, divisor=4.0)
    rates, cuts = [], []
    for epoch, total in enumerate(sums):
        param.grad = torch.tensor([math.sqrt(total)])  # one step whose squared norm is `total`
        annealer.observe([param])
        cuts.append(annealer.end_epoch())
        if sched is not None:
            sched.step_update(epoch + 1)
        rates.append(optimizer.param_groups[0]["lr"])
    return rates, cuts


def test_annealer_divides_by_four_when_the_gradient_sum_doubles():
    rates, cuts = _annealer_with_grad_sums([1.0, 1.5, 3.1, 3.0, 1.0, 2.5])
    assert cuts == [False, False, True, False, False, True]
    np.testing.assert_allclose(rates, [0.1, 0.1, 0.025, 0.025, 0.025, 0.00625])


def test_annealer_cut_survives_the_timm_scheduler():
    rates, _ = _annealer_with_grad_sums([1.0, 3.0, 3.0], scheduler=True)
    np.testing.assert_allclose(rates, [0.1, 0.025, 0.025])


def test_optimizers_by_name():
    model = torch.nn.Linear(3, 2)
    assert isinstance(create_optimizer(model, OptimizerConfig(opt="eve", lr=0.01)), Eve)
    assert type(create_optimizer(model, OptimizerConfig(opt="rmsprop", lr=0.01))).__name__ == "RMSprop"
    sgd = create_optimizer(model, OptimizerConfig(opt="sgd", lr=0.01, momentum=0.8))
    assert sgd.param_groups[0]["momentum"] == 0.8


def test_eve_leaves_biases_and_batchnorm_undecayed_as_timm_does():
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    optimizer = create_optimizer(model, OptimizerConfig(opt="eve", lr=0.01, weight_decay=0.1))
    decay = {id(p): group["weight_decay"] for group in optimizer.param_groups for p in group["params"]}
    assert decay[id(model[0].weight)] == 0.1
    assert decay[id(model[0].bias)] == decay[id(model[1].weight)] == decay[id(model[1].bias)] == 0.0


def test_layer_decay_trains_the_pretrained_body_slower_than_the_head():
    model = timm.create_model("efficientnet_lite0", num_classes=10)
    optimizer = create_optimizer(model, OptimizerConfig(lr=0.01, layer_decay=0.8))
    scheduler = create_scheduler(optimizer, SchedulerConfig(warmup_epochs=0), epochs=2, steps_per_epoch=5)
    scheduler.step_update(0)
    rate = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    assert rate[id(model.classifier.weight)] == pytest.approx(0.01)
    assert rate[id(model.conv_stem.weight)] < 0.01 * 0.8**10
    assert rate[id(model.conv_stem.weight)] < rate[id(model.blocks[3][0].conv_pw.weight)] < 0.01


def test_layer_decay_is_refused_where_it_would_do_nothing():
    with pytest.raises(ValueError, match=r"optimizer.layer_decay: Linear has no layer groups"):
        create_optimizer(torch.nn.Linear(3, 2), OptimizerConfig(layer_decay=0.8))
    with pytest.raises(ValueError, match=r"optimizer.layer_decay is timm's and does not apply to opt: eve"):
        create_optimizer(torch.nn.Linear(3, 2), OptimizerConfig(opt="eve", layer_decay=0.8))


def test_an_unknown_optimizer_is_named_before_training():
    with pytest.raises(ValueError, match=r"optimizer.opt: .*unknown optimizer 'adamx'"):
        parse_params(OptimizerConfig, {"opt": "adamx"}, "optimizer")
    assert parse_params(OptimizerConfig, {"opt": "lookahead_adamw"}, "optimizer").opt == "lookahead_adamw"


def test_step_schedules_decay_within_a_run_and_plateau_is_not_offered():
    model = torch.nn.Linear(3, 2)
    optimizer = create_optimizer(model, OptimizerConfig(opt="sgd", lr=0.1))
    config = SchedulerConfig(sched="step", warmup_epochs=0, decay_epochs=2, decay_rate=0.5)
    scheduler = create_scheduler(optimizer, config, epochs=6, steps_per_epoch=10)
    rates = []
    for update in range(60):
        scheduler.step_update(update)
        rates.append(optimizer.param_groups[0]["lr"])
    assert rates[0] == pytest.approx(0.1) and rates[25] == pytest.approx(0.05) and rates[45] == pytest.approx(0.025)
    with pytest.raises(ValueError, match=r"scheduler.sched: Input should be 'cosine', 'tanh', 'poly', 'step'"):
        parse_params(SchedulerConfig, {"sched": "plateau"}, "scheduler")


def test_a_fractional_warm_up_lets_a_one_epoch_run_warm_up_then_decay():
    model = torch.nn.Linear(3, 2)
    optimizer = create_optimizer(model, OptimizerConfig(opt="adamw", lr=1e-3))
    config = parse_params(SchedulerConfig, {"warmup_epochs": 0.25, "warmup_lr": 1e-5, "min_lr": 1e-5}, "scheduler")
    scheduler = create_scheduler(optimizer, config, epochs=1, steps_per_epoch=100)
    rates = []
    for update in range(1, 101):
        scheduler.step_update(update)
        rates.append(optimizer.param_groups[0]["lr"])
    peak = int(np.argmax(rates))
    assert 20 <= peak <= 30 and rates[peak] > 0.9e-3  # the rate peaks a quarter of the way in
    assert rates[-1] == pytest.approx(1e-5)  # and decays to min_lr by the epoch's end
