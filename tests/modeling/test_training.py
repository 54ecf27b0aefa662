import errno
import math
import re

import albumentations as A
import numpy as np
import pandas as pd
import pytest
import torch
from scipy.special import softmax

from statefarm.data.layout import CLASS_NAMES
from statefarm.data.splits import SplitConfig, assign_folds, split_fold
from statefarm.evaluation.cross_validation import LOGITS, OutOfFoldError, check_predictions_are_the_models
from statefarm.evaluation.inference import InferenceConfig, predict_probabilities
from statefarm.evaluation.pseudo_labels import PseudoLabelConfig
from statefarm.modeling import engine
from statefarm.modeling.checkpoints import CheckpointMismatchError, CheckpointStore, load_checkpoint, save_atomic
from statefarm.modeling.loaders import CachedImageDataset, DeviceBatches, make_loader
from statefarm.modeling.models import ModelConfig, PretrainedWeightsError, create_model, model_data_config
from statefarm.modeling.optim import (
    AnnealerConfig,
    OptimizerConfig,
    SchedulerConfig,
    create_optimizer,
    create_scheduler,
)
from statefarm.modeling.training import (
    MixupConfig,
    PseudoTraining,
    Recipe,
    TrainingConfig,
    labelled_rows,
    load_classifier,
    train_classifier,
)
from statefarm.runtime.config import RuntimeConfig

CPU = RuntimeConfig(device="cpu", num_workers=0)

CHANCE = math.log(10)


@pytest.fixture(scope="module")
def split(prepared_data):
    image_index, _ = prepared_data
    train = image_index[image_index["split"] == "train"]
    return split_fold(train, assign_folds(train, SplitConfig(n_folds=3), seed=0), fold=0)


def _train(prepared_data, split, store, epochs=5, where=CPU, **training):
    image_index, cache = prepared_data
    return train_classifier(
        cache, image_index, split,
        Recipe(
            ModelConfig(name="statefarm_small_cnn"), OptimizerConfig(opt="adamw", lr=1e-3), SchedulerConfig(),
            AnnealerConfig(), TrainingConfig(epochs=epochs, batch_size=16, **training),
        ),
        where, augment=[{"Affine": {"translate_percent": 0.02, "p": 0.5}}], store=store, seed=0, clip=1e-3,
    )  # fmt: skip


def test_a_small_cnn_learns_the_demo_signal(prepared_data, split, tmp_path):
    model, history, valid_predictions = _train(prepared_data, split, CheckpointStore(tmp_path))
    assert list(history["epoch"]) == [0, 1, 2, 3, 4]
    assert history["valid_loss"].iloc[-1] < CHANCE - 0.1
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    assert model["epoch"] == int(history["valid_loss"].idxmin())
    assert model["data_config"]["input_size"] == [3, 24, 32]
    # The saved model predicts exactly the validation logits that were scored.
    assert set(valid_predictions["subject"]) == set(split["valid_drivers"])
    rebuilt = load_classifier(model).eval()
    image_index, cache = prepared_data
    first = cache.images[cache.rows[valid_predictions.at[0, "img"]]]
    inputs = torch.from_numpy(first).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        logits = rebuilt(inputs)[0]
    expected = torch.tensor(valid_predictions.filter(like="logit_").iloc[0].to_numpy())
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-4)
    # Its inference accepts these predictions, and refuses another run's (here, each image given another's logits).
    check_predictions_are_the_models(model, valid_predictions)
    other_run = valid_predictions.copy()
    other_run[LOGITS] = valid_predictions[LOGITS].to_numpy()[::-1]
    with pytest.raises(OutOfFoldError, match="come from another run"):
        check_predictions_are_the_models(model, other_run)


def test_cpu_amp_runs_the_cpu_in_bf16_only_when_asked():
    convolution = torch.nn.Conv2d(3, 4, 3)
    inputs = torch.rand(2, 3, 8, 8)
    for runtime, dtype in [
        (engine.Runtime(torch.device("cpu")), torch.float32),
        (engine.Runtime(torch.device("cpu"), amp=True, cpu_amp=False), torch.float32),
        (engine.Runtime(torch.device("cpu"), amp=False, cpu_amp=True), torch.bfloat16),
    ]:
        with runtime.autocast():
            assert convolution(inputs).dtype == dtype, runtime


def test_cpu_amp_on_a_cpu_without_native_bf16_says_to_turn_it_off(monkeypatch, caplog):
    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        monkeypatch.setattr(torch.cpu, probe, lambda: False, raising=False)
    with caplog.at_level("WARNING", logger="statefarm.modeling.engine"):
        engine.prepare_model(torch.nn.Linear(2, 2), engine.Runtime(torch.device("cpu"), cpu_amp=False))
        assert not caplog.text
        engine.prepare_model(torch.nn.Linear(2, 2), engine.Runtime(torch.device("cpu"), cpu_amp=True))
    assert "no native bf16" in caplog.text and "runtime.cpu_amp" in caplog.text


def test_a_small_cnn_learns_in_bf16_on_the_cpu(prepared_data, split, tmp_path, caplog):
    with caplog.at_level("INFO", logger="statefarm.modeling.training"):
        model, history, valid_predictions = _train(
            prepared_data, split, CheckpointStore(tmp_path), where=CPU.model_copy(update={"cpu_amp": True})
        )
    assert re.search(r"on cpu \(\d+ threads?, bf16\)", caplog.text)
    assert history["valid_loss"].iloc[-1] < CHANCE - 0.1
    logits = valid_predictions.filter(like="logit_").to_numpy()
    assert logits.dtype == "float32" and (logits.std(axis=0) > 0).all()
    # Its test predictions follow: bf16 by default, as the out-of-fold score was measured.
    assert model["model_info"]["valid_precision"] == "bf16"
    image_index, cache = prepared_data
    names = valid_predictions["img"].tolist()
    validated = softmax(logits.astype(np.float64), axis=1)
    followed = predict_probabilities(model, cache, names, InferenceConfig(), CPU)
    forced = predict_probabilities(model, cache, names, InferenceConfig(cpu_amp=False), CPU)
    np.testing.assert_allclose(followed, validated, atol=1e-6)
    assert np.abs(forced - validated).max() > 1e-5  # float32 would submit other numbers than those scored


def test_mixup_blends_each_image_and_its_target_with_its_partners():
    mixup = MixupConfig(mixup_alpha=1.0).create(num_classes=10)
    images, classes = torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 2, 3])
    np.random.seed(0)
    mixed, targets = engine.mix_batch(mixup, images.clone(), classes)
    lam = float(targets[0, 0])
    assert 0.05 < lam < 0.95
    one_hot = torch.eye(10)[classes]
    torch.testing.assert_close(targets, lam * one_hot + (1 - lam) * one_hot.flip(0))
    torch.testing.assert_close(mixed, lam * images + (1 - lam) * images.flip(0))
    # Soft pseudo-labels are blended as they are, with the same weight.
    soft = torch.softmax(torch.randn(4, 10), dim=1)
    np.random.seed(0)
    _, soft_targets = engine.mix_batch(mixup, images.clone(), soft)
    torch.testing.assert_close(soft_targets, lam * soft + (1 - lam) * soft.flip(0))
    # Cutmix pastes a box of the partner: each pixel is one image's or the other's, in the targets' shares.
    np.random.seed(0)
    cut, cut_targets = engine.mix_batch(MixupConfig(cutmix_alpha=1.0).create(10), images.clone(), classes)
    from_partner = (cut == images.flip(0)).all(dim=1) & (cut != images).any(dim=1)
    assert ((cut == images) | (cut == images.flip(0))).all()
    np.testing.assert_allclose(from_partner.float().mean(), 1 - float(cut_targets[0, 0]), atol=1e-6)
    # An odd batch (timm pairs each image with the batch's reverse) and no mixup leave the batch alone.
    odd_images, odd_targets = engine.mix_batch(mixup, images[:3], classes[:3])
    assert torch.equal(odd_images, images[:3]) and torch.equal(odd_targets, classes[:3])
    assert MixupConfig().create(10) is None


def test_a_model_trains_validates_and_predicts_at_its_input_size_not_the_caches(prepared_data, split, tmp_path):
    image_index, cache = prepared_data
    recipe = Recipe(
        ModelConfig(name="statefarm_small_cnn", input_size=(48, 64)), OptimizerConfig(opt="adamw", lr=1e-3),
        SchedulerConfig(), AnnealerConfig(), TrainingConfig(epochs=1, batch_size=16),
    )  # fmt: skip
    augment = [{"Affine": {"translate_percent": 0.02, "p": 0.5}}]
    model, _, valid_predictions = train_classifier(
        cache, image_index, split, recipe, CPU, augment, CheckpointStore(tmp_path), seed=0, clip=1e-3
    )
    assert cache.image_size == (24, 32) and model["data_config"]["input_size"] == [3, 48, 64]
    first = cache.images[cache.rows[valid_predictions.at[0, "img"]]]
    upscaled = torch.from_numpy(A.Resize(48, 64)(image=first)["image"]).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        logits = load_classifier(model).eval()(upscaled)[0]
    expected = torch.tensor(valid_predictions.filter(like="logit_").iloc[0].to_numpy())
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-4)  # validated on the upscaled image
    names = valid_predictions["img"].tolist()[:8]
    predicted = predict_probabilities(model, cache, names, InferenceConfig(), CPU)
    validated = softmax(valid_predictions.filter(like="logit_").to_numpy(np.float64)[:8], axis=1)
    np.testing.assert_allclose(predicted, validated, atol=1e-5)  # inference feeds it the same images
    assert ModelConfig(name="efficientnet_lite0", input_size="96x128").input_size == (96, 128)  # --params' form
    for bad in [(0, 64), "96,128", "96x"]:
        with pytest.raises(ValueError, match="input_size"):
            ModelConfig(name="statefarm_small_cnn", input_size=bad)


def test_a_pseudo_labelled_epoch_makes_the_steps_of_its_labelled_share(prepared_data, split, tmp_path):
    image_index, cache = prepared_data
    test_images = image_index.loc[image_index["split"] == "test", "img"].head(40).tolist()
    labels = pd.DataFrame({"img": test_images, **{name: 0.1 for name in CLASS_NAMES}})
    recipe = Recipe(
        ModelConfig(name="statefarm_small_cnn"), OptimizerConfig(opt="adamw", lr=1e-3), SchedulerConfig(),
        AnnealerConfig(), TrainingConfig(epochs=1, batch_size=16),
    )  # fmt: skip
    labelled = len(labelled_rows(image_index, split["train_drivers"]))
    for share in (1.0, 0.5):
        store = CheckpointStore(tmp_path / str(share))
        pseudo = PseudoTraining(labels, 0.25, labelled_share=share)
        model, _, _ = train_classifier(
            cache, image_index, split, recipe, CPU, None, store, seed=0, clip=1e-3, pseudo=pseudo
        )
        steps = int(store.load("last")["optimizer"]["state"][0]["step"])
        assert steps == -(-round(share * labelled) // 12)  # 12 labelled images a batch, 4 pseudo-labelled
        assert model["run"]["pseudo_labels"]["labelled_share"] == share  # a resume refuses another share
    with pytest.raises(ValueError, match="labelled_share"):
        PseudoLabelConfig(labelled_share=0)


def test_a_small_cnn_learns_with_mixup_and_its_checkpoint_records_it(prepared_data, split, tmp_path):
    model, history, _ = _train(prepared_data, split, CheckpointStore(tmp_path), mixup={"mixup_alpha": 0.2})
    assert history["valid_loss"].iloc[-1] < CHANCE - 0.1
    assert model["run"]["training"]["mixup"]["mixup_alpha"] == 0.2  # a resume refuses another mixup


def _fit_setup(prepared_data, split, seed=0):
    image_index, cache = prepared_data
    torch.manual_seed(seed)
    model = create_model(ModelConfig(name="statefarm_small_cnn"))
    data_config = model_data_config(model, cache.image_size)
    runtime = engine.Runtime(torch.device("cpu"))
    train = labelled_rows(image_index, split["train_drivers"])
    valid = labelled_rows(image_index, split["valid_drivers"])
    from statefarm.modeling.augment import build_transform

    transform = build_transform([{"Affine": {"translate_percent": 0.05, "p": 0.8}}], seed)
    train_set = CachedImageDataset(
        cache.images, cache.rows_of(list(train["img"])), train["label"].to_numpy(), transform
    )
    valid_set = CachedImageDataset(cache.images, cache.rows_of(list(valid["img"])), valid["label"].to_numpy())
    train_loader = make_loader(train_set, 16, True, 0, runtime.device, seed)
    valid_loader = make_loader(valid_set, 32, False, 0, runtime.device, seed)
    optimizer = create_optimizer(model, OptimizerConfig(opt="adamw", lr=1e-3))
    scheduler = create_scheduler(optimizer, SchedulerConfig(), 3, len(train_loader))
    return model, train_loader, valid_loader, optimizer, runtime, data_config, scheduler


class _Interrupted(Exception):
    pass


def test_resume_after_an_interruption_reproduces_the_uninterrupted_run(prepared_data, split, tmp_path):
    model, train, valid, optimizer, runtime, data_config, scheduler = _fit_setup(prepared_data, split)
    args = {"epochs": 3, "seed": 0, "clip": 1e-3}
    engine.fit(model, train, valid, optimizer, runtime, data_config, store=CheckpointStore(tmp_path / "a"),
               scheduler=scheduler, **args)  # fmt: skip
    straight = CheckpointStore(tmp_path / "a").load("last")

    def stop_after_first_epoch(metrics, epoch):
        if epoch == 1:
            raise _Interrupted

    model, train, valid, optimizer, runtime, data_config, scheduler = _fit_setup(prepared_data, split)
    with pytest.raises(_Interrupted):
        engine.fit(model, train, valid, optimizer, runtime, data_config, store=CheckpointStore(tmp_path / "b"),
                   scheduler=scheduler, on_epoch=stop_after_first_epoch, **args)  # fmt: skip
    model, train, valid, optimizer, runtime, data_config, scheduler = _fit_setup(prepared_data, split, seed=0)
    with torch.no_grad():  # a fresh process: whatever the model holds now must not matter
        for parameter in model.parameters():
            parameter.add_(1.0)
    engine.fit(model, train, valid, optimizer, runtime, data_config, store=CheckpointStore(tmp_path / "b"),
               scheduler=scheduler, resume=True, **args)  # fmt: skip
    resumed = CheckpointStore(tmp_path / "b").load("last")

    assert [row["epoch"] for row in resumed["history"]] == [0, 1, 2]
    for name, tensor in straight["model"].items():
        torch.testing.assert_close(resumed["model"][name], tensor, rtol=0, atol=0, msg=name)


@pytest.mark.parametrize(("check_every", "where"), [(1, "step 0"), (2, "steps 0-1")])
def test_nan_loss_stops_cleanly_and_keeps_the_last_good_checkpoint(
    prepared_data, split, tmp_path, monkeypatch, check_every, where
):
    # check_every 2 is how CUDA runs: the loss is checked every few steps, without a host sync per step.
    monkeypatch.setattr(engine, "_finite_checks_every", lambda device: check_every)
    model, train, valid, optimizer, runtime, data_config, scheduler = _fit_setup(prepared_data, split)
    store = CheckpointStore(tmp_path)

    def diverge(metrics, epoch):
        with torch.no_grad():
            model.head[-1].weight.fill_(float("nan"))

    with pytest.raises(engine.NonFiniteLossError, match=rf"epoch 1, {where};.*last\.pt"):
        engine.fit(model, train, valid, optimizer, runtime, data_config, epochs=3, store=store, seed=0,
                   clip=1e-3, on_epoch=diverge)  # fmt: skip
    last = store.load("last")
    assert last["epoch"] == 0
    assert all(torch.isfinite(tensor).all() for tensor in last["model"].values() if tensor.is_floating_point())
    assert not list(tmp_path.glob(".*partial*"))


def test_missing_pretrained_weights_stop_the_run_with_the_fix(tmp_path):
    with pytest.raises(PretrainedWeightsError, match="model.pretrained_file"):
        create_model(ModelConfig(name="resnet18", pretrained=True))


def test_pretrained_file_loads_local_weights(tmp_path):
    source = create_model(ModelConfig(name="resnet18"))
    torch.save(source.state_dict(), tmp_path / "weights.pth")
    loaded = create_model(ModelConfig(name="resnet18", pretrained=True, pretrained_file=str(tmp_path / "weights.pth")))
    torch.testing.assert_close(loaded.conv1.weight, source.conv1.weight)


def test_unknown_architecture_is_named():
    with pytest.raises(ValueError, match="'resnet1000' is not a timm architecture"):
        create_model(ModelConfig(name="resnet1000"))


def test_resume_refuses_a_checkpoint_of_another_recipe_and_a_fresh_run_keeps_the_old_aside(
    prepared_data, split, tmp_path
):
    store = CheckpointStore(tmp_path / "checkpoints")
    first = {"optimizer": {"lr": 1e-3}, "train_images": [10, "p001"]}
    model, train, valid, optimizer, runtime, data_config, scheduler = _fit_setup(prepared_data, split)
    engine.fit(model, train, valid, optimizer, runtime, data_config, epochs=1, store=store, seed=0, clip=1e-3,
               run=first)  # fmt: skip
    old_last = store.path("last").read_bytes()

    model, train, valid, optimizer, runtime, data_config, scheduler = _fit_setup(prepared_data, split)
    other = {"optimizer": {"lr": 1e-2}, "train_images": [10, "p001"]}
    with pytest.raises(CheckpointMismatchError, match=r"cannot resume from .*last\.pt: .*another recipe or split "
                       r"\(optimizer\.lr: 0\.001 in the checkpoint, 0\.01 now\);"):  # fmt: skip
        engine.fit(model, train, valid, optimizer, runtime, data_config, epochs=2, store=store, seed=0, clip=1e-3,
                   resume=True, run=other)  # fmt: skip
    # A key this version adds to the recipe is named, not just its section.
    newer = {**first, "optimizer": {"lr": 1e-3, "layer_decay": None}}
    with pytest.raises(CheckpointMismatchError, match=r"optimizer\.layer_decay: absent in the checkpoint, None now"):
        engine.fit(model, train, valid, optimizer, runtime, data_config, epochs=2, store=store, seed=0, clip=1e-3,
                   resume=True, run=newer)  # fmt: skip

    engine.fit(model, train, valid, optimizer, runtime, data_config, epochs=1, store=store, seed=0, clip=1e-3,
               run=other)  # fmt: skip
    [aside] = store.directory.glob("replaced-*")
    assert (aside / "last.pt").read_bytes() == old_last and (aside / "best.pt").is_file()
    assert store.load("last")["run"] == other and store.load("best")["run"] == other


def test_a_full_disk_is_named_and_the_previous_checkpoint_kept(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_atomic({"epoch": 0}, path)
    real_save = torch.save

    def save_to_a_full_disk(state, _path):
        with open("/dev/full", "wb") as full:  # writes fail with ENOSPC, as on a full disk
            real_save(state, full)

    monkeypatch.setattr(torch, "save", save_to_a_full_disk)
    with pytest.raises(OSError, match=r"no space left on device writing .*last\.pt") as error:
        save_atomic({"epoch": 1, "weights": torch.zeros(100_000)}, path)
    assert error.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert load_checkpoint(path) == {"epoch": 0}
    assert not list(tmp_path.glob(".*partial*"))


def test_label_smoothing_mixes_the_target_with_uniform_for_hard_and_soft_labels():
    logits = torch.tensor([[4.0, 0.0, -2.0], [0.5, 1.0, 0.0]])
    log_p = torch.log_softmax(logits, dim=1)
    hard = torch.tensor([0, 1])
    soft = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.6, 0.2]])
    for targets, dense in ((hard, torch.eye(3)[hard]), (soft, soft)):
        smoothed = 0.8 * dense + 0.2 / 3
        expected = -(smoothed * log_p).sum(1).mean()
        assert engine.loss_fn(logits, targets, label_smoothing=0.2) == pytest.approx(expected.item(), rel=1e-6)
        assert engine.loss_fn(logits, targets) == pytest.approx(-(dense * log_p).sum(1).mean().item(), rel=1e-6)


def test_device_batches_normalize_on_the_device_in_the_loaders_order():
    images = torch.randint(0, 256, (4, 3, 5, 6), dtype=torch.uint8)
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]
    batches = DeviceBatches([(images, torch.arange(4))] * 2, mean, std, torch.device("cpu"), channels_last=True)
    (inputs, targets), _ = list(batches)
    expected = (images.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    torch.testing.assert_close(inputs, expected)
    assert inputs.is_contiguous(memory_format=torch.channels_last) and targets.tolist() == [0, 1, 2, 3]
    assert len(batches) == 2
