"""Training and inference throughput: our cached loader against decoding every JPEG every epoch.

Three feeds for the same model, measured in one run:
  cache      -- ``CachedImageDataset`` over the memory-mapped uint8 cache (ours);
  decode     -- the usual way: open + decode + resize each JPEG per item (ImageFolder style);
  synthetic  -- random tensors already on the device: the ceiling no input pipeline beats.

For each: images/s of the input pipeline alone, of training steps, and of inference.

    python benchmarks/bench_training.py [--model resnet18] [--size 224 224] [--images 640] [--device auto]

On the H100: --model resnet50 --images 8192 --batch-size 256 --workers 12.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from bench_image_cache import generate_large_jpegs  # a sibling script: run from any folder
from statefarm.data.cache import open_image_cache, plan_image_cache, write_image_cache
from statefarm.modeling import engine
from statefarm.modeling.loaders import CachedImageDataset, DeviceBatches, make_loader
from statefarm.modeling.models import ModelConfig, create_model, model_data_config
from statefarm.modeling.optim import OptimizerConfig, create_optimizer


class DecodeEveryTime(Dataset):
    """ImageFolder style: every item is opened, fully decoded and resized when it is read."""

    def __init__(self, paths: list[str], size: tuple[int, int]) -> None:
        self.paths, self.size = paths, size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        with Image.open(self.paths[index]) as image:
            rgb = image.convert("RGB").resize((self.size[1], self.size[0]), Image.Resampling.BILINEAR)
        return torch.from_numpy(np.asarray(rgb).copy()).permute(2, 0, 1), 0


def _time_loader(loader: DataLoader, runtime, data_config, step=None) -> float:
    seen, started = 0, None
    batches = DeviceBatches(loader, data_config["mean"], data_config["std"], runtime.device, runtime.channels_last)
    for batch_index, (inputs, targets) in enumerate(batches):
        if batch_index == 1:  # the first batch pays for worker start-up
            started, seen = time.perf_counter(), 0
        if step is not None:
            step(inputs, targets)
        seen += len(inputs)
    if runtime.device.type == "cuda":
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - started)


def training_steps(model, optimizer, runtime):
    """One optimizer step, and one prediction, on a batch: what each benchmark times."""

    def train_step(inputs, targets):
        with runtime.autocast():
            loss = engine.loss_fn(model(inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    @torch.no_grad()
    def infer_step(inputs, targets):
        with runtime.autocast():
            model(inputs)

    return train_step, infer_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--size", type=int, nargs=2, default=(224, 224), metavar=("H", "W"))
    parser.add_argument("--images", type=int, default=640)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    size = tuple(args.size)
    runtime = engine.Runtime(engine.resolve_device(args.device), amp=True, channels_last=True)

    with tempfile.TemporaryDirectory() as tmp:
        paths = generate_large_jpegs(Path(tmp), args.images)
        plan = plan_image_cache(
            ids=[Path(p).name for p in paths], paths=paths, file_sizes=[0] * len(paths),
            mtimes_ns=[0] * len(paths), decode=[True] * len(paths), image_size=size,
        )  # fmt: skip
        write_image_cache(plan, Path(tmp) / "cache")
        cache = open_image_cache(Path(tmp) / "cache")

        model = engine.prepare_model(create_model(ModelConfig(name=args.model)), runtime)
        data_config = model_data_config(model, size)
        optimizer = create_optimizer(model, OptimizerConfig(opt="sgd", lr=1e-3))

        train_step, infer_step = training_steps(model, optimizer, runtime)
        feeds = {
            "cache": CachedImageDataset(cache.images, np.arange(len(paths)), np.zeros(len(paths), np.int64)),
            "decode": DecodeEveryTime(paths, size),
        }
        rows = []
        for name, dataset in feeds.items():
            loader = make_loader(dataset, args.batch_size, True, args.workers, runtime.device, seed=0)
            model.train()
            input_only = _time_loader(loader, runtime, data_config)
            train = _time_loader(loader, runtime, data_config, train_step)
            model.eval()
            infer = _time_loader(loader, runtime, data_config, infer_step)
            rows.append((name, input_only, train, infer))

        # Already on the device: the ceiling, with no loader and no host-to-device copy.
        synthetic = torch.randint(0, 256, (args.batch_size, 3, *size), dtype=torch.uint8, device=runtime.device)
        labels = torch.zeros(args.batch_size, dtype=torch.long, device=runtime.device)
        batches = [(synthetic, labels)] * max(3, args.images // args.batch_size)
        model.train()
        train = _time_loader(batches, runtime, data_config, train_step)
        model.eval()
        infer = _time_loader(batches, runtime, data_config, infer_step)
        rows.append(("synthetic", float("nan"), train, infer))

    print(
        f"\n{args.model} at {size[0]}x{size[1]}, batch {args.batch_size}, {args.workers} loader workers, "
        f"{runtime.device} (bf16 autocast: {runtime.autocast_enabled}), {args.images} generated 640x480 JPEGs\n"
    )
    header = f"{'feed':<10} {'input img/s':>12} {'train img/s':>12} {'infer img/s':>12} {'train vs ceiling':>17}"
    print(header)
    print("-" * len(header))
    ceiling = rows[-1][2]
    for name, input_only, train, infer in rows:
        print(f"{name:<10} {input_only:>12.0f} {train:>12.1f} {infer:>12.1f} {train / ceiling:>16.0%}")
    cache_row, decode_row = rows[0], rows[1]
    print(
        f"\ncache / decode: input {cache_row[1] / decode_row[1]:.1f}x, train {cache_row[2] / decode_row[2]:.2f}x, "
        f"inference {cache_row[3] / decode_row[3]:.2f}x"
    )


if __name__ == "__main__":
    main()
