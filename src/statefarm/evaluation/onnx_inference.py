"""Predict on the CPU with ONNX Runtime: the same float32 logits as PyTorch eager, about 2.5x faster.

A fold model is exported to ONNX in memory, with the input scaling and normalization in
the graph, so the loader's uint8 batches go in as they are. On two AMD EPYC cores
EfficientNet-Lite0 at 96x128 predicts 79,726 test images in about 3 minutes instead of
8 (``benchmarks/bench_test_prediction.py``); logits agree with PyTorch's within 1e-4.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import warnings
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import onnxruntime
import torch
from torch import nn

from statefarm.evaluation.neighbours import classifier_inputs

# Largest absolute difference from PyTorch eager's float32 logits that the tests allow.
LOGIT_TOLERANCE = 1e-4


class _NormalizedForward(nn.Module):
    """uint8 NCHW images in; logits out, and with ``with_features`` what the classifier receives."""

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float], with_features: bool) -> None:
        super().__init__()
        self.model, self.with_features = model, with_features
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1) * 255)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1) * 255)

    def forward(self, images: torch.Tensor):
        inputs = (images.float() - self.mean) / self.std
        if not self.with_features:
            return self.model(inputs)
        with classifier_inputs(self.model) as captured:
            logits = self.model(inputs)
        return logits, captured[0]


@contextlib.contextmanager
def _native_output_silenced() -> Iterator[None]:
    """Standard output and error closed at the file descriptors while the block runs.

    When an export fails, torch's TorchScript exporter prints the whole graph from C++,
    whatever its ``verbose`` says (dozens of lines per fold model in a run's log); the
    fallback to torch says why in one line instead.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            os.dup2(null.fileno(), 2)
        yield
    finally:
        for fd, copy in zip((1, 2), saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)


def export_session(model: nn.Module, data_config: dict, with_features: bool = False) -> onnxruntime.InferenceSession:
    """An ONNX Runtime session computing ``model``'s logits (and features) from uint8 images of any batch size.

    Exported with TorchScript tracing: the torch.export-based exporter gives the same graph
    but takes 17 s per EfficientNet-Lite0 against 1.8 s, ten times a chain.
    """
    wrapped = _NormalizedForward(model, data_config["mean"], data_config["std"], with_features).eval()
    example = torch.zeros((2, *data_config["input_size"]), dtype=torch.uint8)
    outputs = ["logits", "features"] if with_features else ["logits"]
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad(), _native_output_silenced():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter's notices of its deprecation
        torch.onnx.export(
            wrapped,
            (example,),
            buffer,
            input_names=["images"],
            output_names=outputs,
            dynamic_axes={name: {0: "batch"} for name in ["images", *outputs]},
            dynamo=False,
        )
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    return onnxruntime.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])


def predict_logits(
    session: onnxruntime.InferenceSession, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]
) -> tuple[torch.Tensor, np.ndarray | None]:
    """Logits of every uint8 image batch of ``batches`` (a loader's), in order; features too when exported with them."""
    logits, features = [], []
    for images, _ in batches:
        outputs = session.run(None, {"images": np.ascontiguousarray(images.numpy())})
        logits.append(outputs[0])
        features.extend(outputs[1:])
    return torch.from_numpy(np.concatenate(logits)), (np.concatenate(features) if features else None)
