"""The training loop: ``train_one_epoch``, ``evaluate`` and ``fit``.

On CUDA: bf16 autocast, channels_last and cuDNN autotuning; on CPU the same code
runs in channels_last too, in float32 unless ``cpu_amp`` asks for bf16 autocast there.
``fit`` checkpoints every epoch (``last``) and keeps the best by validation log loss
(``best``); ``resume`` continues from ``last`` and, because each epoch's randomness is
seeded from (seed, epoch), reproduces the uninterrupted run.
"""

from __future__ import annotations

import logging
import math
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from timm.data import Mixup
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm.auto import tqdm

from statefarm.evaluation.metrics import classification_scores
from statefarm.modeling.checkpoints import CheckpointStore, check_same_run
from statefarm.modeling.loaders import DeviceBatches, seed_epoch
from statefarm.modeling.optim import GradientNormAnnealer
from statefarm.runtime import distributed

logger = logging.getLogger(__name__)


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; training stopped before writing any checkpoint."""


@dataclass
class Runtime:
    """Where and how tensors run."""

    device: torch.device
    amp: bool = True
    channels_last: bool = True
    cpu_amp: bool = False

    @property
    def autocast_enabled(self) -> bool:
        """bf16 autocast: ``amp`` on CUDA, ``cpu_amp`` on the CPU.

        The CPU has its own switch because bf16 pays there only on some CPUs (AMX or
        AVX512-BF16) and for some models: on two Sapphire Rapids cores the small CNN trains
        twice as fast, EfficientNet-Lite0 half as fast (its depthwise convolutions'
        backward); ``benchmarks/bench_cpu_precision.py`` measures it.
        """
        if self.device.type == "cuda":
            return self.amp
        return self.cpu_amp and self.device.type == "cpu"

    @property
    def precision(self) -> str:
        """``bf16`` or ``float32``: what the forward passes compute in, as checkpoints and logs name it."""
        return "bf16" if self.autocast_enabled else "float32"

    def autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast_enabled)


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN can run bf16 natively here (AMX or AVX512-BF16), per torch's CPU probes."""
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when there is one; ``cuda`` without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("runtime.device is 'cuda' but torch sees no CUDA device; use 'auto' or 'cpu'")
    return device


def describe_device(runtime: Runtime, cpu_threads: int | None = None) -> str:
    """``cuda:0 (NVIDIA H100 80GB HBM3, bf16)`` or ``cpu (2 threads)``: what a log line should say.

    ``cpu_threads``: what a process will run on, when not this one's (a data-parallel worker's share).
    """
    device = runtime.device
    threads = cpu_threads or torch.get_num_threads()
    what = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{threads} thread{'s' * (threads > 1)}"
    return f"{device} ({what}{', bf16' if runtime.autocast_enabled else ''})"


def prepare_model(model: nn.Module, runtime: Runtime, compile_model: bool = False) -> nn.Module:
    """Move to the device in channels_last when asked; cuDNN autotuning and ``torch.compile`` on CUDA.

    channels_last holds on the CPU too: oneDNN's convolutions, BatchNorm and pooling run
    faster on it (the small CNN trains about 1.3x and predicts about 1.9x faster on two cores).
    bf16 autocast on a CPU that would only emulate it is allowed, with a warning.
    """
    if runtime.autocast_enabled and runtime.device.type == "cpu" and not cpu_has_native_bf16():
        logger.warning(
            "cpu_amp: this CPU has no native bf16 (AMX or AVX512-BF16), so bf16 autocast is emulated "
            "and usually slower than float32; set runtime.cpu_amp and inference.cpu_amp to false"
        )
    model = model.to(runtime.device)
    if runtime.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if runtime.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        if compile_model:
            model = torch.compile(model)
    return model


def loss_fn(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy against class indices or, for soft labels, probability vectors."""
    targets = targets if targets.dtype == torch.long else targets.float()
    return F.cross_entropy(logits.float(), targets, label_smoothing=label_smoothing)


def mix_batch(mixup: Mixup | None, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """timm's mixup or cutmix of one batch, its targets (class indices or soft labels) as probability rows.

    A batch of odd size passes through unmixed (timm pairs each image with the batch's
    reverse), as does every batch without ``mixup``.
    """
    if mixup is None or len(inputs) % 2:
        return inputs, targets
    dense = F.one_hot(targets, mixup.num_classes).float() if targets.dtype == torch.long else targets.float()
    return mixup(inputs, dense)


@dataclass
class EpochStats:
    loss: float
    accuracy: float
    images_per_s: float
    seconds: float = 0.0
    grad_sq_sum: float = 0.0
    lr: float = 0.0


def _finite_checks_every(device: torch.device) -> int:
    """How many steps apart the loss is checked for NaN: each step costs a host sync on CUDA."""
    return CUDA_CHECK_EVERY if device.type == "cuda" else 1


CUDA_CHECK_EVERY = 32


def train_one_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    runtime: Runtime,
    data_config: dict[str, Any],
    epoch: int,
    scheduler: Any = None,
    annealer: GradientNormAnnealer | None = None,
    on_non_finite: Callable[[int, str], NonFiniteLossError] | None = None,
    label_smoothing: float = 0.0,
    mixup: Mixup | None = None,
) -> EpochStats:
    """One pass over ``loader``; steps the scheduler per update.

    The loss, accuracy and NaN check stay on the device: on CUDA the host waits for them
    only every ``CUDA_CHECK_EVERY`` steps and at the end, so the GPU is never kept idle
    by a per-step ``.item()``. On the CPU every step is checked (it costs nothing there).

    Raises:
        NonFiniteLossError: At the first NaN or infinite loss, before the optimizer step on
            the CPU; on CUDA within ``CUDA_CHECK_EVERY`` steps of it. Either way before any
            checkpoint of the epoch is written.
    """
    model.train()
    batches = DeviceBatches(loader, data_config["mean"], data_config["std"], runtime.device, runtime.channels_last)
    total_loss = torch.zeros((), device=runtime.device)
    correct = torch.zeros((), dtype=torch.long, device=runtime.device)
    finite = torch.ones((), dtype=torch.bool, device=runtime.device)
    seen, steps_per_epoch, check_every = 0, len(loader), _finite_checks_every(runtime.device)
    checked = -1  # the last step known finite
    started = time.perf_counter()
    # A terminal that reports no size (a pty opened by `script`, some CI runners) would get a
    # zero-width bar from tqdm; shutil falls back to $COLUMNS, then 80.
    width = shutil.get_terminal_size().columns
    quiet = not sys.stderr.isatty() or not distributed.is_main()
    progress = tqdm(batches, desc=f"epoch {epoch + 1}", leave=False, ncols=width, disable=quiet)
    for step, (inputs, targets) in enumerate(progress):
        inputs, targets = mix_batch(mixup, inputs, targets)
        with runtime.autocast():
            logits = model(inputs)
        loss = loss_fn(logits, targets, label_smoothing)
        finite &= torch.isfinite(loss)
        if (step + 1) % check_every == 0 or step + 1 == steps_per_epoch:
            if not distributed.all_agree(finite):  # the one host sync, every `check_every` steps
                window = f"step {step}" if checked + 1 == step else f"steps {checked + 1}-{step}"
                if on_non_finite is not None:
                    raise on_non_finite(epoch, window)
                raise NonFiniteLossError(f"loss became NaN or infinite at epoch {epoch}, {window}")
            checked = step
            progress.set_postfix(loss=f"{float(total_loss) / max(seen, 1):.4f}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if annealer is not None:
            annealer.observe(model.parameters())
        detached = loss.detach()
        optimizer.step(lambda detached=detached: detached)  # Eve reads the loss; the others ignore it
        if scheduler is not None:
            scheduler.step_update(num_updates=epoch * steps_per_epoch + step + 1)

        batch = inputs.shape[0]
        seen += batch
        total_loss += detached * batch
        hard = targets if targets.dtype == torch.long else targets.argmax(1)
        correct += (logits.argmax(1) == hard).sum()
    loss_sum, correct_count = float(total_loss), int(correct)
    seconds = time.perf_counter() - started
    return EpochStats(
        loss=loss_sum / max(seen, 1),
        accuracy=correct_count / max(seen, 1),
        images_per_s=seen * distributed.ranks() / max(seconds, 1e-9),
        seconds=seconds,
        grad_sq_sum=annealer.current if annealer is not None else 0.0,
        lr=max(group["lr"] for group in optimizer.param_groups),  # the head's, under layer-wise decay
    )


@torch.no_grad()
def predict_logits(
    model: nn.Module, loader: DataLoader, runtime: Runtime, data_config: dict[str, Any]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (float32, CPU) and targets of every item of ``loader``, in order; one copy to the host at the end.

    A loader that a ``DistributedSampler`` shares out between processes is predicted a share
    each, then gathered, so that every process returns every item.
    """
    model.eval()
    all_logits, all_targets = [], []
    for inputs, targets in DeviceBatches(
        loader, data_config["mean"], data_config["std"], runtime.device, runtime.channels_last
    ):
        with runtime.autocast():
            all_logits.append(model(inputs).float())
        all_targets.append(targets)
    logits, targets = torch.cat(all_logits), torch.cat(all_targets)
    if isinstance(getattr(loader, "sampler", None), DistributedSampler):
        total = len(loader.dataset)
        logits, targets = distributed.gather_in_order(logits, total), distributed.gather_in_order(targets, total)
    return logits.cpu(), targets.cpu()


def evaluate(
    model: nn.Module, loader: DataLoader, runtime: Runtime, data_config: dict[str, Any], clip: float
) -> tuple[dict[str, float], torch.Tensor]:
    """Validation scores and the logits they came from."""
    logits, targets = predict_logits(model, loader, runtime, data_config)
    return classification_scores(logits, targets, clip), logits


@dataclass
class FitResult:
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    best_valid_logits: torch.Tensor | None = None
    last_valid_logits: torch.Tensor | None = None  # of the last epoch this call trained


def unwrap(model: nn.Module) -> nn.Module:
    """The model itself, out of ``DistributedDataParallel`` and ``torch.compile``."""
    if isinstance(model, DistributedDataParallel):
        model = model.module
    return getattr(model, "_orig_mod", model)


def _state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().cpu() for name, tensor in unwrap(model).state_dict().items()}


def fit(
    model: nn.Module,
    train_loader: DataLoader,
    valid_loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    runtime: Runtime,
    data_config: dict[str, Any],
    epochs: int,
    store: CheckpointStore | None,
    seed: int,
    clip: float,
    scheduler: Any = None,
    annealer: GradientNormAnnealer | None = None,
    resume: bool = False,
    model_info: dict[str, Any] | None = None,
    on_epoch: Callable[[dict[str, float], int], None] | None = None,
    run: dict[str, Any] | None = None,
    label_smoothing: float = 0.0,
    mixup: Mixup | None = None,
    log_level: int = logging.INFO,
) -> FitResult:
    """Train for ``epochs``, validating and checkpointing after each.

    Args:
        model: Already on the device (``prepare_model``).
        train_loader: Shuffled, augmented training batches.
        valid_loader: The validation drivers, in a fixed order.
        optimizer: Any torch optimizer (``Eve`` included).
        runtime: Device, AMP and memory format.
        data_config: ``mean``, ``std`` and ``input_size`` (``models.model_data_config``).
        epochs: Total epochs, counting those done before a resume.
        store: Where ``last`` and ``best`` go; ``None`` keeps no checkpoint (a quick trial).
        seed: Seeds each epoch's shuffling, augmentation and dropout.
        clip: Probability clipping of the submission, for the clipped log loss.
        scheduler: A timm scheduler stepped per update, or ``None``.
        annealer: The gradient-norm annealer, or ``None``.
        resume: Continue from ``last`` when it exists.
        model_info: Saved in the checkpoints to rebuild the model (architecture, arguments).
        on_epoch: Called with each epoch's metrics and its number counted from 1, as the log, the learning
            curves and the run summary count (e.g. MLflow logging, whose steps it becomes).
        run: What makes this run itself (recipe, split; plain values), saved in its checkpoints:
            ``resume`` refuses a ``last`` made by another; a fresh start moves the folder's
            earlier checkpoints aside.
        label_smoothing: Of the training loss; the validation loss is the plain log loss.
        mixup: timm's ``Mixup`` over every even-sized training batch, or ``None``.
        log_level: Of the one line per epoch (a scan's trials report once each, at DEBUG).

    Returns:
        The per-epoch history, the best epoch and its validation logits, and the last epoch's.

    Raises:
        NonFiniteLossError: Naming the epoch, the step and the last good checkpoint, which is kept.
        CheckpointMismatchError: ``resume`` found a ``last`` made by another run.
    """
    result = FitResult()
    best_loss, start_epoch = math.inf, 0
    run = run or {}
    if resume and store is not None and store.exists("last"):
        last = store.load("last")
        check_same_run(last.get("run"), run, store.path("last"))
        unwrap(model).load_state_dict(last["model"])
        optimizer.load_state_dict(last["optimizer"])
        if scheduler is not None and last.get("scheduler") is not None:
            scheduler.load_state_dict(last["scheduler"])
        if annealer is not None and last.get("annealer") is not None:
            annealer.load_state_dict(last["annealer"])
        result.history, best_loss = last["history"], last["best_loss"]
        result.best_epoch = last["best_epoch"]
        start_epoch = last["epoch"] + 1
        if store.exists("best"):
            result.best_valid_logits = store.load("best").get("valid_logits")
        logger.info("Resuming from %s after epoch %d", store.path("last"), last["epoch"])
    elif store is not None and distributed.is_main() and (aside := store.set_aside()) is not None:
        logger.warning("Starting afresh: an earlier run's checkpoints were moved to %s", aside)

    def non_finite(epoch: int, steps: str) -> NonFiniteLossError:
        kept = store.path("last") if store is not None and store.exists("last") else "none"
        return NonFiniteLossError(
            f"loss became NaN or infinite at epoch {epoch}, {steps}; training stopped. "
            f"Last good checkpoint, left untouched: {kept}. Lower the learning rate or check the inputs."
        )

    for epoch in range(start_epoch, epochs):
        seed_epoch(train_loader, seed, epoch)
        torch.manual_seed(seed * 1_000_003 + epoch)
        if mixup is not None:
            np.random.seed((seed * 1_000_003 + epoch) % 2**32)  # timm's mixup draws from numpy's global generator
        stats = train_one_epoch(
            model, train_loader, optimizer, runtime, data_config, epoch, scheduler, annealer, non_finite,
            label_smoothing, mixup,
        )  # fmt: skip
        scores, valid_logits = evaluate(model, valid_loader, runtime, data_config, clip)
        annealed = annealer.end_epoch() if annealer is not None else False
        metrics = {
            "train_loss": stats.loss,
            "train_accuracy": stats.accuracy,
            "valid_loss": scores["log_loss"],
            "valid_loss_clipped": scores["log_loss_clipped"],
            "valid_accuracy": scores["accuracy"],
            "lr": stats.lr,
            "images_per_s": stats.images_per_s,
        }
        if annealer is not None:
            metrics["grad_sq_sum"] = stats.grad_sq_sum
        result.history.append({"epoch": epoch, **metrics})
        result.last_valid_logits = valid_logits
        if scores["log_loss"] < best_loss:
            best_loss, result.best_epoch, result.best_valid_logits = scores["log_loss"], epoch, valid_logits
        if store is not None and distributed.is_main():  # one writer when data-parallel
            model_state = _state_dict(model)
            if result.best_epoch == epoch:
                store.save(
                    "best",
                    {
                        "model": model_state,
                        "model_info": model_info or {},
                        "data_config": data_config,
                        "run": run,
                        "epoch": epoch,
                        "metrics": metrics,
                        "valid_logits": valid_logits,
                    },
                )
            store.save(
                "last",
                {
                    "model": model_state,
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "annealer": annealer.state_dict() if annealer is not None else None,
                    "epoch": epoch,
                    "history": result.history,
                    "best_loss": best_loss,
                    "best_epoch": result.best_epoch,
                    "model_info": model_info or {},
                    "data_config": data_config,
                    "run": run,
                },
            )
        remaining = (epochs - epoch - 1) * stats.seconds
        logger.log(
            log_level if distributed.is_main() else logging.DEBUG,
            "epoch %d/%d  train loss %.4f acc %.3f | valid loss %.4f (clipped %.4f) acc %.3f | lr %.2e | "
            "%.0f img/s | ETA %.0fs%s",
            epoch + 1, epochs, stats.loss, stats.accuracy, scores["log_loss"], scores["log_loss_clipped"],
            scores["accuracy"], stats.lr, stats.images_per_s, remaining,
            " | annealed: lr divided" if annealed else "",
        )  # fmt: skip
        if on_epoch is not None:
            on_epoch(metrics, epoch + 1)
    return result
