"""Test-neighbour search at the real test set's size: time and peak memory.

The real test set has 79,726 images; a model's penultimate features are up to 1,280
numbers each (EfficientNet-Lite0). Each case runs in a fresh process, so its peak
resident memory is its own:
  ours   -- ``statefarm.evaluation.neighbours.find_neighbours``: scikit-learn's exact brute-force
            search, in blocks (never an n x n matrix);
  pca    -- the same on 128 principal components (``inference.neighbours.search_dims: 128``);
  dense  -- the naive way: the full n x n similarity matrix, then a partial sort per row.
            Run only where it fits; its memory grows with n squared (80,000: 25.6 GB).

    python benchmarks/bench_neighbours.py [--sizes 10000 20000 80000] [--dims 1280] [--k 10]
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import time

import numpy as np

DENSE_LIMIT = 20_000  # 20,000^2 float32 = 1.6 GB: the largest the naive way may try here


def _features(n: int, dims: int) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, dims), dtype=np.float32)


def _ours(n: int, dims: int, k: int, search_dims: int | None = None) -> tuple[float, float]:
    from statefarm.evaluation.neighbours import find_neighbours

    features = _features(n, dims)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    find_neighbours(features, [str(i) for i in range(n)], k, search_dims)
    return time.perf_counter() - start, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024


def _dense(n: int, dims: int, k: int) -> tuple[float, float]:
    features = _features(n, dims)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    np.argpartition(-similarity, k, axis=1)[:, :k]
    return time.perf_counter() - start, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024


def _in_fresh_process(function, *args) -> tuple[float, float]:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 20_000, 80_000])
    parser.add_argument("--dims", type=int, default=1280)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    print(f"{args.dims}-dimensional random features, {args.k} neighbours each\n")
    print(
        f"{'images':>8} {'ours s':>8} {'ours MB':>8} {'pca s':>7} {'pca MB':>7} {'dense s':>8} {'dense MB':>9}", end=""
    )
    print(f" {'time ratio':>10} {'memory ratio':>12}")
    for n in args.sizes:
        seconds, megabytes = _in_fresh_process(_ours, n, args.dims, args.k)
        pca_seconds, pca_megabytes = _in_fresh_process(_ours, n, args.dims, args.k, 128)
        if n <= DENSE_LIMIT:
            dense_seconds, dense_megabytes = _in_fresh_process(_dense, n, args.dims, args.k)
            ratios = f"{seconds / dense_seconds:>10.2f} {megabytes / dense_megabytes:>12.2f}"
            dense = f"{dense_seconds:>8.1f} {dense_megabytes:>9.0f}"
        else:
            dense = f"{'-':>8} {n * n * 4 / 2**20:>8.0f}*"
            ratios = f"{'-':>10} {megabytes / (n * n * 4 / 2**20):>12.3f}"
        print(f"{n:>8} {seconds:>8.1f} {megabytes:>8.0f} {pca_seconds:>7.1f} {pca_megabytes:>7.0f} {dense} {ratios}")
    print("\n* not run: the similarity matrix alone; ratios are ours / dense (below 1: ours is better)")


if __name__ == "__main__":
    main()
