"""Training and inference img/s of our own loop (``engine.train_one_epoch``, ``predict_logits``)
from the image cache, against synthetic batches already on the device: the ceiling no
input pipeline beats. One row per input size and ``torch.compile`` setting.

    python benchmarks/gpu_check.py [--model resnet50] [--sizes 224x224 240x320] [--images 2048] [--compile both]

``benchmarks/gpu_check.sh`` runs it (and the demo chain) in one call on a GPU machine;
``--device cpu`` with a small model and sizes is how CI exercises it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench_image_cache import generate_large_jpegs  # a sibling script: run from any folder
from statefarm.data.cache import open_image_cache, plan_image_cache, write_image_cache
from statefarm.modeling import engine
from statefarm.modeling.loaders import CachedImageDataset, make_loader
from statefarm.modeling.models import ModelConfig, create_model, model_data_config
from statefarm.modeling.optim import OptimizerConfig, create_optimizer


def _size(text: str) -> tuple[int, int]:
    height, width = text.lower().split("x")
    return int(height), int(width)


def _train_and_infer(model, batches, runtime, data_config, epochs: int) -> tuple[float, float]:
    """img/s of the last of ``epochs`` training epochs (the first pays for compilation), then of inference."""
    optimizer = create_optimizer(model, OptimizerConfig(opt="sgd", lr=1e-4, momentum=0.9))
    for epoch in range(epochs):
        stats = engine.train_one_epoch(model, batches, optimizer, runtime, data_config, epoch)
    started = time.perf_counter()
    logits, _ = engine.predict_logits(model, batches, runtime, data_config)  # ends with a copy to the host
    return stats.images_per_s, len(logits) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--sizes", type=_size, nargs="+", default=[(224, 224), (240, 320)], metavar="HxW")
    parser.add_argument("--images", type=int, default=2048, help="generated 640x480 JPEGs, cached at each size")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=2, help="the last one is timed")
    parser.add_argument("--compile", choices=["off", "on", "both"], default="both")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    runtime = engine.Runtime(engine.resolve_device(args.device), amp=True, channels_last=True)
    compile_settings = {"off": [False], "on": [True], "both": [False, True]}[args.compile]

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = generate_large_jpegs(Path(tmp), args.images)
        for size in args.sizes:
            plan = plan_image_cache(
                ids=[Path(p).name for p in paths], paths=paths, file_sizes=[0] * len(paths),
                mtimes_ns=[0] * len(paths), decode=[True] * len(paths), image_size=size,
            )  # fmt: skip
            folder = Path(tmp) / f"cache_{size[0]}x{size[1]}"
            write_image_cache(plan, folder)
            cache = open_image_cache(folder)
            labels = np.arange(len(paths)) % 10
            dataset = CachedImageDataset(cache.images, np.arange(len(paths)), labels)
            loader = make_loader(dataset, args.batch_size, True, args.workers, runtime.device, seed=0)
            steps = len(loader)
            synthetic = [
                (
                    torch.randint(0, 256, (args.batch_size, 3, *size), dtype=torch.uint8, device=runtime.device),
                    torch.randint(0, 10, (args.batch_size,), device=runtime.device),
                )
            ] * steps
            for compiled in compile_settings:
                speeds = {}
                for feed, batches in (("cache", loader), ("synthetic", synthetic)):
                    torch.manual_seed(0)
                    model = engine.prepare_model(create_model(ModelConfig(name=args.model)), runtime, compiled)
                    data_config = model_data_config(model, size)
                    speeds[feed] = _train_and_infer(model, batches, runtime, data_config, args.epochs)
                rows.append((size, compiled, speeds))

    device = torch.cuda.get_device_name(runtime.device) if runtime.device.type == "cuda" else "cpu"
    print(
        f"\n{args.model}, batch {args.batch_size}, {args.workers} loader workers, {device}, "
        f"bf16 autocast {runtime.autocast_enabled}, channels_last, our training loop; "
        f"{args.images} images, epoch {args.epochs} timed\n"
    )
    header = (
        f"{'size':>8} {'compile':>8} {'train cache':>12} {'train synth':>12} {'cache/synth':>12} "
        f"{'infer cache':>12} {'infer synth':>12}"
    )
    print(header)
    print("-" * len(header))
    for (height, width), compiled, speeds in rows:
        (train_cache, infer_cache), (train_synth, infer_synth) = speeds["cache"], speeds["synthetic"]
        print(
            f"{f'{height}x{width}':>8} {'on' if compiled else 'off':>8} {train_cache:>12.0f} {train_synth:>12.0f} "
            f"{train_cache / train_synth:>12.2f} {infer_cache:>12.0f} {infer_synth:>12.0f}"
        )
    print("\nimg/s; cache/synth is the share of the ceiling our input pipeline reaches (target: 0.9 or more on a GPU)")


if __name__ == "__main__":
    main()
