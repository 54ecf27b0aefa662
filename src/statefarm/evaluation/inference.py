"""Predict the test images from the cache, with optional test-time augmentation and calibration."""

from __future__ import annotations

import logging
import math
from functools import partial
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from scipy.optimize import minimize_scalar

from statefarm.config import Params
from statefarm.data.cache import ImageCache
from statefarm.evaluation import onnx_inference
from statefarm.evaluation.neighbours import NeighbourConfig, penultimate_features
from statefarm.modeling import engine
from statefarm.modeling.augment import AugmentSpec, at_input_size, build_transform
from statefarm.modeling.loaders import CachedImageDataset, make_loader
from statefarm.modeling.training import load_classifier
from statefarm.runtime import placement
from statefarm.runtime.config import RuntimeConfig

logger = logging.getLogger(__name__)


class InferenceConfig(Params):
    """How to predict: batch size, precision, test-time augmentations, calibration and the fold ensemble.

    Where it predicts (device, workers, memory layout) is the run's ``RuntimeConfig``.
    """

    batch_size: int = Field(256, ge=1)
    amp: bool | None = Field(None, description="bf16 autocast on CUDA; null: as the model was validated")
    cpu_amp: bool | None = Field(None, description="bf16 autocast on the CPU; null: as the model was validated")
    cpu_runtime: Literal["onnxruntime", "torch"] = Field(
        "onnxruntime", description="what predicts float32 on the CPU; bf16 predictions always run in torch"
    )
    tta: list[AugmentSpec] = Field(
        default_factory=list, description="extra views, each an augment spec; the plain image is always one view"
    )
    calibrate: bool = Field(True, description="fit a softmax temperature on the out-of-fold logits")
    ensemble: Literal["arithmetic", "geometric"] = Field("geometric", description="mean of the fold models")
    neighbours: NeighbourConfig = Field(default_factory=NeighbourConfig, description="test-neighbour smoothing")


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """The temperature ``T`` that minimizes the log loss of ``softmax(logits / T)``.

    Fitted on the validation drivers' logits, never on test. Returns ``T`` and the
    log loss before and after.
    """
    logits_t = torch.tensor(np.asarray(logits, dtype=np.float64))
    labels_t = torch.tensor(np.asarray(labels, dtype=np.int64))

    def loss_at(log_t: float) -> float:
        return float(F.cross_entropy(logits_t / math.exp(log_t), labels_t))

    best = minimize_scalar(loss_at, bounds=(math.log(0.05), math.log(20.0)), method="bounded")
    return {
        "temperature": math.exp(best.x),
        "valid_log_loss_before": loss_at(0.0),
        "valid_log_loss_after": float(best.fun),
    }


def predict_probabilities(
    checkpoint: dict[str, Any],
    image_cache: ImageCache,
    names: list[str],
    config: InferenceConfig,
    where: RuntimeConfig,
    temperature: float = 1.0,
    seed: int = 0,
) -> np.ndarray:
    """Class probabilities of ``names``, averaged over the plain view and every TTA view.

    The model is rebuilt from the checkpoint, normalized with the mean and std it was
    trained with, and fed images at the size it was trained at.
    """
    return _predict(checkpoint, image_cache, names, config, where, temperature, seed, keep_features=False)[0]


def predict_with_features(
    checkpoint: dict[str, Any],
    image_cache: ImageCache,
    names: list[str],
    config: InferenceConfig,
    where: RuntimeConfig,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """``predict_probabilities``, and the features the model's classifier saw for the plain view, in one pass."""
    return _predict(checkpoint, image_cache, names, config, where, 1.0, seed, keep_features=True)


def _predict(checkpoint, image_cache, names, config, where, temperature, seed, keep_features):
    with placement.claim_devices(where.device) as (device,):
        runtime = prediction_runtime(device, checkpoint, config, where.channels_last)
        return _predict_on(runtime, checkpoint, image_cache, names, config, where, temperature, seed, keep_features)


def prediction_runtime(
    device: torch.device, checkpoint: dict[str, Any], config: InferenceConfig, channels_last: bool = True
) -> engine.Runtime:
    """Where and in which precision to predict with ``checkpoint``.

    ``amp`` or ``cpu_amp`` left null predicts in the precision the model's validation
    predictions were made in (``valid_precision`` in its checkpoint): those predictions
    are what the out-of-fold score, the calibration and the blend weights describe, so
    the test predictions should come from the same numerics. A checkpoint from before
    the key predicts in bf16 on CUDA and in float32 on the CPU.
    """
    validated = checkpoint["model_info"].get("valid_precision")
    amp = config.amp if config.amp is not None else validated != "float32"
    cpu_amp = config.cpu_amp if config.cpu_amp is not None else validated == "bf16"
    return engine.Runtime(device, amp, channels_last, cpu_amp)


def _predict_on(runtime, checkpoint, image_cache, names, config, where, temperature, seed, keep_features):
    data_config = checkpoint["data_config"]
    model = load_classifier(checkpoint).eval()
    forward, predictor = _forward_pass(model, runtime, data_config, config, keep_features)
    rows = image_cache.rows_of(names)
    trained_size = tuple(data_config["input_size"][1:])
    total = np.zeros((len(names), checkpoint["model_info"]["num_classes"]), np.float64)
    features = None
    views = [None, *config.tta]
    for view, spec in enumerate(views):
        view_transform = build_transform(spec, seed + view, key="inference.tta")
        transform = at_input_size(view_transform, image_cache.image_size, trained_size, seed + view)
        dataset = CachedImageDataset(image_cache.images, rows, np.zeros(len(rows), np.int64), transform)
        loader = make_loader(dataset, config.batch_size, False, where.num_workers, runtime.device, seed)
        logits, view_features = forward(loader, keep_features and view == 0)
        features = view_features if view == 0 else features
        total += F.softmax(logits.double() / temperature, dim=1).numpy()
    logger.info(
        "Predicted %d images, %d view(s), temperature %.3f, in %s (%s)",
        len(names), len(views), temperature, runtime.precision, predictor,
    )  # fmt: skip
    return total / len(views), features


def _forward_pass(model, runtime, data_config, config, keep_features):
    """``forward(loader, with_features) -> (logits, features or None)`` where it predicts best, and that runtime's name.

    float32 on the CPU runs in ONNX Runtime unless ``inference.cpu_runtime`` says torch;
    bf16 and CUDA run in torch, as the model trained. The first view's session (with the
    features when ``keep_features``) is exported at once, so a model ONNX cannot express
    falls back to torch before any image is read; a TTA view's is exported when first needed.
    """
    if runtime.device.type == "cpu" and not runtime.autocast_enabled and config.cpu_runtime == "onnxruntime":
        try:
            sessions = {keep_features: onnx_inference.export_session(model, data_config, keep_features)}
        except torch.onnx.OnnxExporterError as error:
            reason = str(error).splitlines()[0]
            logger.info("%s does not export to ONNX (%s); it predicts in torch", type(model).__name__, reason)
        else:

            def forward_onnx(loader, with_features):
                if with_features not in sessions:
                    sessions[with_features] = onnx_inference.export_session(model, data_config, with_features)
                return onnx_inference.predict_logits(sessions[with_features], loader)

            return forward_onnx, "onnxruntime"

    model = engine.prepare_model(model, runtime)

    def forward(loader, with_features):
        run = partial(engine.predict_logits, model, loader, runtime, data_config)
        if not with_features:
            return run()[0], None
        (logits, _), features = penultimate_features(engine.unwrap(model), run)
        return logits, features

    return forward, "torch"
