"""Time building the image cache against the naive way, in the same run.

Naive: one process; per image open, full decode, resize, copy into an in-memory array.
Cache: ``write_image_cache`` (reduced-size JPEG decode, every core, straight to a
memory-mapped file). Also times the second build, which reuses the cache.

    python benchmarks/bench_image_cache.py [--shared PATH] [--n-shared N] [--n-large N]

Prints one row per case: images/s for both and the speed-up.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from statefarm.data.cache import plan_image_cache, write_image_cache
from statefarm.data.demo_data import DemoDataConfig, generate_demo_dataset
from statefarm.runtime.parallel import parallel_map, resolve_num_workers

DEFAULT_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "statefarm-80x60"


def naive_decode(paths: list[str], image_size: tuple[int, int]) -> np.ndarray:
    height, width = image_size
    out = np.empty((len(paths), height, width, 3), np.uint8)
    for row, path in enumerate(paths):
        with Image.open(path) as image:
            out[row] = np.asarray(image.convert("RGB").resize((width, height), Image.Resampling.BILINEAR))
    return out


def _save_jpeg(job: tuple[str, object]) -> str:
    path, draw = job
    draw().save(path, format="JPEG", quality=90)
    return path


def generate_large_jpegs(folder: Path, count: int) -> list[str]:
    """640x480 JPEGs from the demo generator, noisy enough to weigh ~50 KB like the real photos."""
    config = DemoDataConfig(
        train_drivers=10, test_drivers=1, images_per_driver_class=-(-count // 100), image_size=(480, 640), noise=4.0
    )
    images, _, _ = generate_demo_dataset(config, seed=0)
    keys = sorted(k for k in images if k.startswith("train/"))[:count]
    jobs = [(str(folder / f"{key.rsplit('/', 1)[1]}.jpg"), images[key]) for key in keys]
    return parallel_map(_save_jpeg, jobs)


def time_case(name: str, paths: list[str], image_size: tuple[int, int], workers: int | None) -> dict:
    sizes = [Path(p).stat().st_size for p in paths]
    plan = plan_image_cache(
        ids=[Path(p).name for p in paths], paths=paths, file_sizes=sizes, mtimes_ns=[0] * len(paths),
        decode=[True] * len(paths), image_size=image_size, num_workers=workers,
    )  # fmt: skip
    for path in paths:  # read every file once so both ways start from a warm page cache
        Path(path).read_bytes()
    started = time.perf_counter()
    naive_decode(paths, image_size)
    naive_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        write_image_cache(plan, Path(tmp) / "cache")
        cache_s = time.perf_counter() - started
        started = time.perf_counter()
        write_image_cache(plan, Path(tmp) / "cache")
        reuse_s = time.perf_counter() - started
    return {
        "case": name, "images": len(paths), "target": f"{image_size[0]}x{image_size[1]}",
        "naive": len(paths) / naive_s, "cache": len(paths) / cache_s, "reuse_s": reuse_s,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="the 80x60 State Farm folder")
    parser.add_argument("--n-shared", type=int, default=10_000)
    parser.add_argument("--n-large", type=int, default=1_000)
    parser.add_argument("--workers", type=int, default=None, help="decoding processes (default: every core)")
    args = parser.parse_args()
    workers = resolve_num_workers(args.workers)

    rows = []
    if (args.shared / "imgs").is_dir():
        shared = sorted(str(p) for p in (args.shared / "imgs").rglob("*.jpg"))[: args.n_shared]
        rows.append(time_case("shared 80x60", shared, (60, 80), workers))
        rows.append(time_case("shared 80x60", shared, (224, 224), workers))
    else:
        print(f"(skipping the 80x60 case: {args.shared} not found)")
    with tempfile.TemporaryDirectory() as tmp:
        large = generate_large_jpegs(Path(tmp), args.n_large)
        rows.append(time_case("generated 640x480", large, (240, 320), workers))
        rows.append(time_case("generated 640x480", large, (224, 224), workers))
        rows.append(time_case("generated 640x480", large, (120, 160), workers))

    print(f"\nImage cache build, {workers} worker process(es); naive = 1 process, full decode + resize\n")
    header = (
        f"{'case':<18} {'images':>7} {'target':>8} {'naive img/s':>12} {'cache img/s':>12} {'ratio':>6} {'reuse s':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['case']:<18} {r['images']:>7} {r['target']:>8} {r['naive']:>12.0f} "
            f"{r['cache']:>12.0f} {r['cache'] / r['naive']:>5.1f}x {r['reuse_s']:>8.3f}"
        )


if __name__ == "__main__":
    main()
