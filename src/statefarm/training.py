"""Train a classifier on the cached images of the training drivers, validate on the others.

Glue between the data layer (image cache, image index, driver split) and the loop in
``engine``: it selects the rows, builds the loaders, the model and the optimizer,
and packages what the later stages need.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import torch
from pydantic import Field

from statefarm import engine, tracking
from statefarm.augment import AugmentSpec, build_transform
from statefarm.cache import ImageCache
from statefarm.checkpoints import CheckpointStore
from statefarm.config import Params
from statefarm.layout import CLASS_NAMES
from statefarm.loaders import CachedImageDataset, make_loader
from statefarm.models import ModelConfig, create_model, model_data_config
from statefarm.optim import (
    AnnealerConfig,
    GradientNormAnnealer,
    OptimizerConfig,
    SchedulerConfig,
    create_optimizer,
    create_scheduler,
)
from statefarm.splits import check_disjoint

logger = logging.getLogger(__name__)


class TrainingConfig(Params):
    """How long and where to train."""

    epochs: int = Field(10, ge=1)
    batch_size: int = Field(64, ge=1)
    num_workers: int = Field(4, ge=0, description="DataLoader worker processes")
    device: str = Field("auto", description="auto, cpu or cuda")
    amp: bool = Field(True, description="bf16 autocast on CUDA")
    channels_last: bool = True
    compile: bool = Field(False, description="torch.compile on CUDA")
    resume: bool = Field(False, description="continue from the last checkpoint when there is one")


def labelled_rows(image_index: pd.DataFrame, drivers: list[str]) -> pd.DataFrame:
    """Usable labelled images of ``drivers``, in index order."""
    train = image_index[(image_index["split"] == "train") & image_index["valid"]]
    return train[train["subject"].isin(drivers)].reset_index(drop=True)


def train_classifier(
    image_cache: ImageCache,
    image_index: pd.DataFrame,
    driver_split: dict,
    model_config: ModelConfig,
    optimizer_config: OptimizerConfig,
    scheduler_config: SchedulerConfig,
    annealer_config: AnnealerConfig,
    training_config: TrainingConfig,
    augment: AugmentSpec | None,
    store: CheckpointStore,
    seed: int,
    clip: float,
    metrics_prefix: str = "",
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """Train on the split's training drivers, keep the best epoch on its validation drivers.

    Returns:
        ``(model, history, valid_predictions)``: the best checkpoint (weights, how to
        rebuild the model, its data config), one row of metrics per epoch, and the
        best epoch's validation logits per image.
    """
    check_disjoint(driver_split["train_drivers"], driver_split["valid_drivers"])
    train = labelled_rows(image_index, driver_split["train_drivers"])
    valid = labelled_rows(image_index, driver_split["valid_drivers"])
    if train.empty or valid.empty:
        raise ValueError(f"driver_split leaves {len(train)} training and {len(valid)} validation images")

    torch.manual_seed(seed)
    runtime = engine.Runtime(
        engine.resolve_device(training_config.device), training_config.amp, training_config.channels_last
    )
    model = create_model(model_config)
    data_config = model_data_config(model, image_cache.image_size)
    model = engine.prepare_model(model, runtime, training_config.compile)

    rows = image_cache.rows_of
    train_set = CachedImageDataset(
        image_cache.images, rows(train["img"].tolist()), train["label"].to_numpy(), build_transform(augment, seed)
    )
    valid_set = CachedImageDataset(image_cache.images, rows(valid["img"].tolist()), valid["label"].to_numpy())
    loader_args = {"num_workers": training_config.num_workers, "device": runtime.device, "seed": seed}
    train_loader = make_loader(train_set, training_config.batch_size, shuffle=True, **loader_args)
    valid_loader = make_loader(valid_set, training_config.batch_size * 2, shuffle=False, **loader_args)

    optimizer = create_optimizer(model, optimizer_config)
    scheduler = create_scheduler(optimizer, scheduler_config, training_config.epochs, len(train_loader))
    annealer = (
        GradientNormAnnealer(optimizer, annealer_config.factor, annealer_config.divisor)
        if annealer_config.enabled
        else None
    )
    logger.info(
        "Training %s on %d images of %d drivers, validating on %d images of %d drivers, on %s",
        model_config.name, len(train), train["subject"].nunique(), len(valid), valid["subject"].nunique(),
        runtime.device,
    )  # fmt: skip
    result = engine.fit(
        model, train_loader, valid_loader, optimizer, runtime, data_config,
        epochs=training_config.epochs, store=store, seed=seed, clip=clip, scheduler=scheduler,
        annealer=annealer, resume=training_config.resume,
        model_info={"name": model_config.name, "num_classes": len(CLASS_NAMES)},
        on_epoch=lambda metrics, epoch: tracking.log_metrics(metrics, step=epoch, prefix=metrics_prefix),
    )  # fmt: skip

    best = store.load("best")
    best.pop("valid_logits", None)
    logits = result.best_valid_logits.numpy().astype(np.float32)
    valid_predictions = valid.loc[:, ["img", "subject", "label"]].assign(
        **{f"logit_{name}": logits[:, k] for k, name in enumerate(CLASS_NAMES)}
    )
    return best, pd.DataFrame(result.history), valid_predictions


def load_classifier(checkpoint: dict[str, Any]) -> torch.nn.Module:
    """Rebuild the model a checkpoint was trained as and load its weights (no download)."""
    info = checkpoint["model_info"]
    model = create_model(ModelConfig(name=info["name"], pretrained=False), num_classes=info["num_classes"])
    model.load_state_dict(checkpoint["model"])
    return model
