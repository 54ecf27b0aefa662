"""Test-prediction speed of real80x60's default model: ONNX Runtime against plain PyTorch eager.

EfficientNet-Lite0 at 96x128, fed from a 60x80 uint8 cache as the chain feeds it (resized in
the loader), through ``statefarm.evaluation.inference.predict_probabilities`` with
``inference.cpu_runtime`` torch (eager, channels_last, float32: the baseline) and
onnxruntime, at two batch sizes. Random images and weights: speed does not depend on
them. The real chain predicts 79,726 test images ten times (five folds, two stages);
the last column is what those ten passes would take at the measured rate.

    python benchmarks/bench_test_prediction.py [--images 4096] [--batch-sizes 64 256]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from statefarm.data.cache import ImageCache
from statefarm.evaluation.inference import InferenceConfig, predict_probabilities
from statefarm.modeling.models import ModelConfig, create_model, model_data_config
from statefarm.runtime.config import RuntimeConfig

TEST_IMAGES, PASSES = 79_726, 10


def _cache(count: int) -> ImageCache:
    images = np.random.default_rng(0).integers(0, 256, (count, 60, 80, 3), dtype=np.uint8)
    ids = tuple(f"img_{i}.jpg" for i in range(count))
    return ImageCache(images, np.ones(count, bool), ids, (60, 80), "benchmark")


def _checkpoint() -> dict:
    torch.manual_seed(0)
    model = create_model(ModelConfig(name="efficientnet_lite0", pretrained=False)).eval()
    info = {"name": "efficientnet_lite0", "num_classes": 10, "valid_precision": "float32"}
    return {"model": model.state_dict(), "model_info": info, "data_config": model_data_config(model, (96, 128))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256])
    args = parser.parse_args()
    cache, checkpoint = _cache(args.images), _checkpoint()
    names = list(cache.ids)
    on_cpu = RuntimeConfig(device="cpu", num_workers=0)
    predict_probabilities(checkpoint, cache, names[:64], InferenceConfig(), on_cpu)  # warm up

    print(f"efficientnet_lite0 at 96x128 from a 60x80 cache, {args.images} images, {torch.get_num_threads()} threads")
    print(f"{'runtime':<12} {'batch':>5} {'images/s':>9} {'vs torch':>9} {'max |dlogp|':>12} {'10 x 79,726':>12}")
    baseline, reference = None, None
    for batch_size in args.batch_sizes:
        for runtime in ("torch", "onnxruntime"):
            config = InferenceConfig(batch_size=batch_size, cpu_runtime=runtime)
            start = time.perf_counter()
            probabilities = predict_probabilities(checkpoint, cache, names, config, on_cpu)
            rate = len(names) / (time.perf_counter() - start)
            baseline = baseline or rate
            reference = np.log(probabilities) if reference is None else reference
            difference = np.abs(np.log(probabilities) - reference).max()
            minutes = PASSES * TEST_IMAGES / rate / 60
            print(
                f"{runtime:<12} {batch_size:>5} {rate:>9.0f} {rate / baseline:>8.2f}x {difference:>12.1e} "
                f"{minutes:>10.1f} m"
            )


if __name__ == "__main__":
    main()
