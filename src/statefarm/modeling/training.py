"""Train a classifier on the cached images of the training drivers, validate on the others.

Glue between the data layer (image cache, image index, driver split) and the loop in
``engine``: it selects the rows, builds the loaders, the model and the optimizer,
and packages what the later stages need.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from pydantic import Field
from timm.data import Mixup
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from statefarm.config import Params
from statefarm.data.cache import ImageCache
from statefarm.data.layout import CLASS_NAMES
from statefarm.data.splits import check_disjoint
from statefarm.modeling import engine
from statefarm.modeling.augment import AugmentSpec, at_input_size, build_transform
from statefarm.modeling.checkpoints import CheckpointStore
from statefarm.modeling.loaders import CachedImageDataset, make_loader
from statefarm.modeling.lr_finder import LrFindConfig, lr_range_test
from statefarm.modeling.models import ModelConfig, create_model, model_data_config
from statefarm.modeling.optim import (
    AnnealerConfig,
    GradientNormAnnealer,
    OptimizerConfig,
    SchedulerConfig,
    create_optimizer,
    create_scheduler,
)
from statefarm.modeling.sampler import MixedBatchSampler
from statefarm.runtime import distributed, placement, tracking
from statefarm.runtime.config import RuntimeConfig

logger = logging.getLogger(__name__)


class MixupConfig(Params):
    """timm's batch mixup and cutmix: each image blended with (or a box pasted from) its partner, targets alike.

    Off while both alphas are 0. A regularizer: tune it on the full data, not on the sample.
    """

    mixup_alpha: float = Field(0.0, ge=0, description="Beta(alpha, alpha) of the blend; 0: no mixup")
    cutmix_alpha: float = Field(0.0, ge=0, description="Beta(alpha, alpha) of the pasted box's area; 0: no cutmix")
    prob: float = Field(1.0, ge=0, le=1, description="share of batches mixed")
    switch_prob: float = Field(0.5, ge=0, le=1, description="share of the mixed batches cut, when both are on")

    def create(self, num_classes: int) -> Mixup | None:
        """timm's ``Mixup`` on dense targets (``multi_label``: probability rows, hard or soft), or None when off."""
        if not (self.mixup_alpha or self.cutmix_alpha):
            return None
        return Mixup(
            mixup_alpha=self.mixup_alpha, cutmix_alpha=self.cutmix_alpha, prob=self.prob,
            switch_prob=self.switch_prob, label_smoothing=0.0, num_classes=num_classes, multi_label=True,
        )  # fmt: skip


class TrainingConfig(Params):
    """How long to train, and the loss's regularization; where it runs is ``RuntimeConfig``'s."""

    epochs: int = Field(10, ge=1)
    pseudo_epochs: int | None = Field(
        None, ge=1, description="epochs with pseudo-labels (fine-tuning the baseline needs fewer); null: epochs"
    )
    batch_size: int = Field(64, ge=1)
    resume: bool = Field(False, description="continue from the last checkpoint when there is one")
    use_tuned_augmentations: bool = Field(True, description="train with augment_tuning's result when it exists")
    use_tuned_regularization: bool = Field(
        True, description="the main model trains with regularization_tuning's kept keys when they exist"
    )
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="of the training loss; validation is scored without")
    mixup: MixupConfig = Field(default_factory=MixupConfig, description="batch mixup and cutmix (timm)")


def choose_augmentations(tuned: dict | None, configured: AugmentSpec | None, use_tuned: bool) -> AugmentSpec | None:
    """The tuned spec when there is one and it is wanted, otherwise the ``augment`` parameter."""
    if use_tuned and tuned is not None:
        logger.info("Augmenting with the tuned spec: %s", tuned["augment"])
        return tuned["augment"]
    logger.info("Augmenting with the `augment` parameter%s", "" if use_tuned else " (tuned spec not wanted)")
    return configured


def labelled_rows(image_index: pd.DataFrame, drivers: list[str]) -> pd.DataFrame:
    """Usable labelled images of ``drivers``, in index order."""
    train = image_index[(image_index["split"] == "train") & image_index["valid"]]
    return train[train["subject"].isin(drivers)].reset_index(drop=True)


@dataclass(frozen=True)
class PseudoTraining:
    """Pseudo-labelled test images to mix into every batch, and where to start from."""

    labels: pd.DataFrame  # img, c0..c9 target probabilities
    fraction: float
    init_checkpoint: dict[str, Any] | None = None
    seen_drivers: tuple[str, ...] = ()  # every labelled driver behind the labels and the initial weights
    labelled_share: float = 1.0  # of the labelled images, drawn afresh every epoch


@dataclass(frozen=True)
class Recipe:
    """Everything that decides how a model is trained, parsed from the parameters."""

    model: ModelConfig
    optimizer: OptimizerConfig
    scheduler: SchedulerConfig
    annealer: AnnealerConfig
    training: TrainingConfig


def _model_info(
    name: str, train: pd.DataFrame, pseudo: PseudoTraining | None, runtime: engine.Runtime
) -> dict[str, Any]:
    """How to rebuild the model, every labelled driver it learned from (directly or through
    pseudo-labels), and the precision its validation predictions were made in, which its test
    predictions follow by default."""
    drivers = set(train["subject"].astype(str)) if "subject" in train else set()
    if pseudo is not None:
        drivers |= set(pseudo.seen_drivers)
    return {
        "name": name,
        "num_classes": len(CLASS_NAMES),
        "train_drivers": sorted(drivers),
        "valid_precision": runtime.precision,
    }


def _images(rows: pd.DataFrame) -> list:
    """How many images, and of which drivers (when the rows say)."""
    drivers = sorted(rows["subject"].astype(str).unique()) if "subject" in rows else []
    return [len(rows), *drivers]


# How a run goes about training, not what it trains (tuned keys show in the recipe itself).
NOT_RECIPE = {"resume", "use_tuned_augmentations", "use_tuned_regularization"}


def describe_recipe(recipe: Recipe, augment: AugmentSpec | None, seed: int) -> dict[str, Any]:
    """What the parameters decide of a training run, in plain values: recipe, augmentation and seed.

    Where it runs (``RuntimeConfig``) is not part of it: a run may resume on another machine.
    """
    run = {
        "model": recipe.model.model_dump(),
        "optimizer": recipe.optimizer.model_dump(),
        "scheduler": recipe.scheduler.model_dump(),
        "annealer": recipe.annealer.model_dump(),
        "training": recipe.training.model_dump(exclude=NOT_RECIPE),
        "augment": augment or [],
        "seed": seed,
    }
    return json.loads(json.dumps(run))  # plain lists and dicts, as a checkpoint reloads them


def describe_run(
    recipe: Recipe,
    augment: AugmentSpec | None,
    seed: int,
    train: pd.DataFrame,
    valid: pd.DataFrame,
    pseudo: PseudoTraining | None,
) -> dict[str, Any]:
    """What makes a training run itself: ``describe_recipe``, the data and the pseudo-labels.

    Saved in its checkpoints, so that a resume cannot continue another run's.
    """
    run = describe_recipe(recipe, augment, seed) | {
        "train_images": _images(train),
        "valid_images": _images(valid),
        "pseudo_labels": None,
    }
    if pseudo is not None:
        run["pseudo_labels"] = {
            "images": len(pseudo.labels),
            "fraction": pseudo.fraction,
            "labelled_share": pseudo.labelled_share,
            "from": list(pseudo.seen_drivers),
            "init": pseudo.init_checkpoint is not None,
        }
    return json.loads(json.dumps(run))


def fit_on_rows(
    image_cache: ImageCache,
    train: pd.DataFrame,
    valid: pd.DataFrame,
    recipe: Recipe,
    where: RuntimeConfig,
    augment: AugmentSpec | None,
    store: CheckpointStore | None,
    seed: int,
    clip: float,
    on_epoch: Callable[[dict[str, float], int], None] | None = None,
    pseudo: PseudoTraining | None = None,
    log_level: int = logging.INFO,
    device: torch.device | None = None,
) -> engine.FitResult:
    """Train on the ``train`` rows (``img``, ``label``) and validate on the ``valid`` rows.

    ``store=None`` keeps no checkpoint (a quick trial); otherwise see ``engine.fit``.
    With ``pseudo``, a fixed share of every batch comes from the pseudo-labelled test
    images (soft cross-entropy), and training may start from the baseline's weights.
    It runs ``where`` says; with ``runtime.devices`` above 1, data-parallel (``distributed.launch``):
    ``training.batch_size`` stays the global batch, shared out between the processes.
    The GPUs are claimed for the whole fit (``placement.claim_devices``), so that folds
    trained at the same time take different ones; ``device`` is the claimed one, set here.
    """
    config = recipe.training
    if device is None and not dist.is_initialized():
        per_machine = distributed.world_size(where.devices)
        args = (image_cache, train, valid, recipe, where, augment, store, seed, clip, on_epoch, pseudo, log_level)
        with placement.claim_devices(where.device, per_machine) as devices:
            if per_machine * where.nodes > 1:
                return distributed.launch(fit_on_rows, args, devices, where.nodes, where.rendezvous)
            return fit_on_rows(*args, device=devices[0])
    if config.batch_size % distributed.ranks():
        raise ValueError(f"training.batch_size {config.batch_size} does not split over {distributed.ranks()} processes")
    batch_size = config.batch_size // distributed.ranks()
    torch.manual_seed(seed)
    # A data-parallel worker's "cuda" is the GPU launch made current in it.
    runtime = _runtime(where, device)
    model, input_size, data_config = _model_for(recipe.model, image_cache)
    if pseudo is not None and pseudo.init_checkpoint is not None:
        if pseudo.init_checkpoint["model_info"]["name"] != recipe.model.name:
            raise ValueError(
                f"cannot fine-tune {recipe.model.name!r} from a {pseudo.init_checkpoint['model_info']['name']!r} "
                "checkpoint: set pseudo_label.init to scratch, or use the same model.name"
            )
        model.load_state_dict(pseudo.init_checkpoint["model"])
    model = engine.prepare_model(model, runtime, where.compile)
    if dist.is_initialized():  # gradients all-reduced; the same weights everywhere from the start
        model = DistributedDataParallel(model)

    rows = image_cache.rows_of
    transform = at_input_size(build_transform(augment, seed), image_cache.image_size, input_size, seed)
    loader_args = {"num_workers": where.num_workers, "device": runtime.device, "seed": seed}
    if pseudo is None:
        train_set = _labelled_set(image_cache, train, transform)
        shard = (
            DistributedSampler(train_set, distributed.ranks(), distributed.rank(), shuffle=True, seed=seed)
            if dist.is_initialized()
            else None
        )
        train_loader = make_loader(train_set, batch_size, shuffle=True, sampler=shard, **loader_args)
    else:
        one_hot = np.eye(len(CLASS_NAMES), dtype=np.float32)[train["label"].to_numpy()]
        soft = pseudo.labels.loc[:, list(CLASS_NAMES)].to_numpy(np.float32)
        train_set = CachedImageDataset(
            image_cache.images,
            np.concatenate([rows(train["img"].tolist()), rows(pseudo.labels["img"].tolist())]),
            np.concatenate([one_hot, soft]),
            transform,
        )
        sampler = MixedBatchSampler(
            len(train), len(soft), batch_size, pseudo.fraction, seed, distributed.rank(), distributed.ranks(),
            labelled_share=pseudo.labelled_share,
        )  # fmt: skip
        train_loader = make_loader(train_set, batch_size, shuffle=True, batch_sampler=sampler, **loader_args)
    valid_set = _labelled_set(image_cache, valid, at_input_size(None, image_cache.image_size, input_size, seed))
    # Data-parallel: each process predicts a share of the validation images, then all are gathered.
    valid_shard = DistributedSampler(valid_set, shuffle=False) if dist.is_initialized() else None
    valid_loader = make_loader(valid_set, batch_size * 2, shuffle=False, sampler=valid_shard, **loader_args)

    epochs = config.pseudo_epochs if pseudo is not None and config.pseudo_epochs is not None else config.epochs
    optimizer = create_optimizer(model, recipe.optimizer)
    scheduler = create_scheduler(optimizer, recipe.scheduler, epochs, len(train_loader))
    annealer = (
        GradientNormAnnealer(optimizer, recipe.annealer.factor, recipe.annealer.divisor)
        if recipe.annealer.enabled
        else None
    )
    return engine.fit(
        model, train_loader, valid_loader, optimizer, runtime, data_config,
        epochs=epochs, store=store, seed=seed, clip=clip, scheduler=scheduler, annealer=annealer,
        resume=config.resume, model_info=_model_info(recipe.model.name, train, pseudo, runtime),
        on_epoch=on_epoch if distributed.is_main() else None,
        run=describe_run(recipe, augment, seed, train, valid, pseudo),
        label_smoothing=config.label_smoothing, mixup=config.mixup.create(len(CLASS_NAMES)), log_level=log_level,
    )  # fmt: skip


def _model_for(config: ModelConfig, image_cache: ImageCache) -> tuple[torch.nn.Module, tuple[int, int], dict]:
    """The model (on the CPU, untrained), the input size it sees and its data config (mean, std, ...)."""
    model = create_model(config)
    input_size = config.input_size or image_cache.image_size
    return model, input_size, model_data_config(model, input_size)


def _labelled_set(image_cache: ImageCache, rows: pd.DataFrame, transform) -> CachedImageDataset:
    """The cached images of ``rows`` (``img``, ``label``), through ``transform``."""
    return CachedImageDataset(image_cache.images, image_cache.rows_of(rows["img"].tolist()), rows["label"].to_numpy(),
                              transform)  # fmt: skip


def find_learning_rate(
    image_cache: ImageCache,
    train: pd.DataFrame,
    recipe: Recipe,
    where: RuntimeConfig,
    augment: AugmentSpec | None,
    seed: int,
    config: LrFindConfig,
) -> pd.DataFrame:
    """The learning-rate range test (``lr_finder.lr_range_test``) of ``recipe`` on the ``train`` rows: its model,
    optimizer, batch size, augmentation and label smoothing, on one device; its schedule is the sweep's."""
    torch.manual_seed(seed)
    runtime = _runtime(where)
    model, input_size, data_config = _model_for(recipe.model, image_cache)
    model = engine.prepare_model(model, runtime, where.compile)
    transform = at_input_size(build_transform(augment, seed), image_cache.image_size, input_size, seed)
    loader = make_loader(
        _labelled_set(image_cache, train, transform), recipe.training.batch_size, shuffle=True,
        num_workers=where.num_workers, device=runtime.device, seed=seed,
    )  # fmt: skip
    logger.info(
        "Learning-rate sweep of %s on %s: %d images of %d drivers, %d steps from %.0e to %.0e",
        recipe.model.name, engine.describe_device(runtime), len(train), train["subject"].nunique(), config.steps,
        config.start_lr, config.end_lr,
    )  # fmt: skip
    optimizer = create_optimizer(model, recipe.optimizer)
    return lr_range_test(model, loader, optimizer, runtime, data_config, config, recipe.training.label_smoothing)


def _runtime(where: RuntimeConfig, device: torch.device | None = None) -> engine.Runtime:
    return engine.Runtime(device or engine.resolve_device(where.device), where.amp, where.channels_last, where.cpu_amp)


def _pseudo_mix(pseudo: PseudoTraining | None) -> str:
    if pseudo is None:
        return ""
    share = f", {pseudo.labelled_share:.0%} of the labelled an epoch" if pseudo.labelled_share < 1 else ""
    return f" + {len(pseudo.labels)} pseudo-labelled test images ({pseudo.fraction:.0%} of each batch{share})"


def _where(where: RuntimeConfig) -> str:
    """``cpu (2 threads)``, or ``cuda:0 (NVIDIA H100 ..., bf16) x 8 processes`` when data-parallel."""
    per_machine = distributed.world_size(where.devices)
    processes = per_machine * where.nodes
    if processes == 1:
        return engine.describe_device(_runtime(where))
    share = distributed.cpu_threads_per_process(per_machine)
    return f"{engine.describe_device(_runtime(where), cpu_threads=share)} x {processes} processes"


def train_classifier(
    image_cache: ImageCache,
    image_index: pd.DataFrame,
    driver_split: dict,
    recipe: Recipe,
    where: RuntimeConfig,
    augment: AugmentSpec | None,
    store: CheckpointStore,
    seed: int,
    clip: float,
    run_name: str = "model",
    pseudo: PseudoTraining | None = None,
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """Train on the split's training drivers, keep the best epoch on its validation drivers.

    In MLflow, the model is a child run named ``run_name`` (``baseline.fold_0``) with its
    own parameters and per-epoch metrics (``valid_loss``, ...), so that selecting several
    children in the compare view overlays their learning curves.

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
    logger.info(
        "Training %s (%s) on %s: %d images of %d drivers%s, validating on %d images of %d drivers",
        run_name, recipe.model.name, _where(where),
        len(train), train["subject"].nunique(),
        _pseudo_mix(pseudo),
        len(valid), valid["subject"].nunique(),
    )  # fmt: skip
    params = describe_run(recipe, augment, seed, train, valid, pseudo)
    with tracking.child_run(run_name, params, {"model": run_name, "stage": "training"}) as log:
        result = fit_on_rows(
            image_cache, train, valid, recipe, where, augment, store, seed, clip,
            on_epoch=log, pseudo=pseudo,
        )  # fmt: skip
        best = result.history[result.best_epoch]
        kept = {f"best_{name}": best[name] for name in ("valid_loss", "valid_accuracy", "train_loss") if name in best}
        log({"best_epoch": result.best_epoch + 1, **kept})  # the kept epoch's, counted from 1
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
