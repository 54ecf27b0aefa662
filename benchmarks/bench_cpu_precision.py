"""float32 against bf16 autocast on the CPU (``runtime.cpu_amp``, ``inference.cpu_amp``).

bf16 pays on a CPU only where oneDNN has native bf16 kernels (AMX or AVX512-BF16) and only
for some layers: plain convolutions speed up, depthwise ones (EfficientNet) slow down in
the backward pass. So it is measured per model, on this machine, before an environment
turns it on. Each model trains (AdamW steps) and predicts on batches already in memory,
in channels_last, at the real 80x60 cache's size; the ratio is bf16 over float32 from
the same run.

    python benchmarks/bench_cpu_precision.py [--models statefarm_small_cnn efficientnet_lite0]
        [--size 60 80] [--batch-size 64] [--steps 10]
"""

from __future__ import annotations

import argparse
import time

import torch

from bench_training import training_steps  # a sibling script: run from any folder
from statefarm.modeling import engine
from statefarm.modeling.models import ModelConfig, create_model
from statefarm.modeling.optim import OptimizerConfig, create_optimizer


def _images_per_s(step, batch_size: int, steps: int) -> float:
    for _ in range(3):  # oneDNN picks and caches its kernels on the first calls
        step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return batch_size * steps / (time.perf_counter() - started)


def measure(name: str, size: tuple[int, int], batch_size: int, steps: int, bf16: bool) -> tuple[float, float]:
    """Training and inference images/s of ``name`` on the CPU, in bf16 autocast or float32."""
    torch.manual_seed(0)
    runtime = engine.Runtime(torch.device("cpu"), amp=False, channels_last=True, cpu_amp=bf16)
    model = engine.prepare_model(create_model(ModelConfig(name=name, pretrained=False)), runtime)
    optimizer = create_optimizer(model, OptimizerConfig(opt="adamw", lr=1e-4))
    inputs = torch.randn(batch_size, 3, *size).contiguous(memory_format=torch.channels_last)
    targets = torch.randint(0, 10, (batch_size,))

    train_step, infer_step = training_steps(model, optimizer, runtime)
    model.train()
    train = _images_per_s(lambda: train_step(inputs, targets), batch_size, steps)
    model.eval()
    return train, _images_per_s(lambda: infer_step(inputs, targets), batch_size, steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["statefarm_small_cnn", "efficientnet_lite0"])
    parser.add_argument("--size", type=int, nargs=2, default=(60, 80), metavar=("H", "W"))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    size = tuple(args.size)
    print(
        f"\nCPU, {torch.get_num_threads()} threads, native bf16: {engine.cpu_has_native_bf16()}; "
        f"{size[0]}x{size[1]}, batch {args.batch_size}, {args.steps} steps each\n"
    )
    header = (
        f"{'model':<22} {'train fp32':>11} {'train bf16':>11} {'ratio':>6}"
        f" {'infer fp32':>11} {'infer bf16':>11} {'ratio':>6}   (img/s)"
    )
    print(header)
    print("-" * len(header))
    for name in args.models:
        train32, infer32 = measure(name, size, args.batch_size, args.steps, bf16=False)
        train16, infer16 = measure(name, size, args.batch_size, args.steps, bf16=True)
        print(
            f"{name:<22} {train32:>11.0f} {train16:>11.0f} {train16 / train32:>5.2f}x"
            f" {infer32:>11.0f} {infer16:>11.0f} {infer16 / infer32:>5.2f}x"
        )


if __name__ == "__main__":
    main()
