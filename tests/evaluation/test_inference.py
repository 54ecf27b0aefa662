import albumentations as A
import numpy as np
import torch

from statefarm.evaluation.inference import (
    InferenceConfig,
    fit_temperature,
    predict_probabilities,
    predict_with_features,
    prediction_runtime,
)
from statefarm.evaluation.onnx_inference import LOGIT_TOLERANCE
from statefarm.modeling.models import ModelConfig, create_model, model_data_config
from statefarm.runtime.config import RuntimeConfig

CPU = RuntimeConfig(device="cpu", num_workers=0)


def test_temperature_recovers_the_one_the_labels_were_drawn_with():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(4000, 10))
    probabilities = np.exp(logits / 2.5) / np.exp(logits / 2.5).sum(1, keepdims=True)
    labels = np.array([rng.choice(10, p=p) for p in probabilities])
    fitted = fit_temperature(logits, labels)
    assert abs(fitted["temperature"] - 2.5) < 0.2
    assert fitted["valid_log_loss_after"] < fitted["valid_log_loss_before"]


def _checkpoint(size):
    torch.manual_seed(0)
    model = create_model(ModelConfig(name="statefarm_small_cnn")).eval()
    return {
        "model": model.state_dict(),
        "model_info": {"name": "statefarm_small_cnn", "num_classes": 10},
        "data_config": model_data_config(model, size),
    }, model


def test_predictions_match_the_model_and_tta_averages_views(prepared_data):
    image_index, cache = prepared_data
    names = image_index.loc[image_index["split"] == "test", "img"].tolist()[:5]
    checkpoint, model = _checkpoint(cache.image_size)
    config = InferenceConfig(batch_size=4)
    plain = predict_probabilities(checkpoint, cache, names, config, CPU)
    inputs = torch.from_numpy(cache.images[cache.rows_of(names)]).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        expected = torch.softmax(model(inputs).double(), 1).numpy()
    np.testing.assert_allclose(plain, expected, rtol=1e-5, atol=1e-6)

    sharp = predict_probabilities(checkpoint, cache, names, config, CPU, temperature=0.5)
    assert (sharp.max(1) >= plain.max(1) - 1e-9).all()

    shifted = [{"Affine": {"translate_px": {"x": 3, "y": 0}, "p": 1.0}}]
    tta = predict_probabilities(checkpoint, cache, names, config.model_copy(update={"tta": [shifted]}), CPU)
    np.testing.assert_allclose(tta.sum(1), 1.0)
    assert not np.allclose(tta, plain)


def test_images_are_resized_to_the_trained_size(prepared_data):
    image_index, cache = prepared_data
    names = image_index["img"].tolist()[:3]
    checkpoint, model = _checkpoint((48, 64))  # trained at a size other than the cache's 24x32
    probabilities = predict_probabilities(checkpoint, cache, names, InferenceConfig(), CPU)
    resized = np.stack([A.Resize(48, 64)(image=image)["image"] for image in cache.images[cache.rows_of(names)]])
    with torch.no_grad():
        expected = torch.softmax(model(torch.from_numpy(resized).permute(0, 3, 1, 2).float() / 255).double(), 1)
    np.testing.assert_allclose(probabilities, expected.numpy(), rtol=1e-5, atol=1e-6)  # the small CNN takes any size


def test_predictions_follow_the_precision_the_model_was_validated_in_unless_told():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    for device, validated, config, bf16 in [
        (cpu, "bf16", InferenceConfig(), True),
        (cpu, "float32", InferenceConfig(), False),
        (cpu, None, InferenceConfig(), False),  # a checkpoint from before valid_precision: as before
        (cpu, "bf16", InferenceConfig(cpu_amp=False), False),
        (cpu, "float32", InferenceConfig(cpu_amp=True), True),
        (cuda, "bf16", InferenceConfig(), True),
        (cuda, "float32", InferenceConfig(), False),
        (cuda, None, InferenceConfig(), True),
        (cuda, "float32", InferenceConfig(amp=True), True),
    ]:
        info = {"name": "statefarm_small_cnn"} | ({"valid_precision": validated} if validated else {})
        runtime = prediction_runtime(device, {"model_info": info}, config)
        assert runtime.autocast_enabled == bf16, (device, validated, config)


def test_onnx_runtime_predicts_what_torch_predicts_and_the_same_features(prepared_data, caplog):
    image_index, cache = prepared_data
    names = image_index.loc[image_index["split"] == "test", "img"].tolist()
    torch.manual_seed(0)
    model = create_model(ModelConfig(name="efficientnet_lite0", pretrained=False)).eval()
    checkpoint = {
        "model": model.state_dict(),
        "model_info": {"name": "efficientnet_lite0", "num_classes": 10, "valid_precision": "float32"},
        "data_config": model_data_config(model, (48, 64)),
    }
    config = InferenceConfig(batch_size=7)  # a last batch of another size
    with caplog.at_level("INFO", logger="statefarm.evaluation.inference"):
        onnx, onnx_features = predict_with_features(checkpoint, cache, names, config, CPU)
    assert "float32 (onnxruntime)" in caplog.text
    eager, eager_features = predict_with_features(
        checkpoint, cache, names, config.model_copy(update={"cpu_runtime": "torch"}), CPU
    )
    np.testing.assert_allclose(np.log(onnx), np.log(eager), atol=2 * LOGIT_TOLERANCE)
    np.testing.assert_allclose(onnx_features, eager_features, atol=LOGIT_TOLERANCE)
    assert onnx_features.shape == (len(names), 1280)


def test_a_model_onnx_cannot_express_predicts_in_torch(prepared_data, caplog, capfd):
    image_index, cache = prepared_data
    names = image_index["img"].tolist()[:3]
    checkpoint, _ = _checkpoint(cache.image_size)  # the small CNN pools adaptively to 4x4, which ONNX refuses at 24x32
    with caplog.at_level("INFO", logger="statefarm.evaluation.inference"):
        predict_probabilities(checkpoint, cache, names, InferenceConfig(), CPU)
    assert "does not export to ONNX" in caplog.text and "float32 (torch)" in caplog.text
    printed = capfd.readouterr()
    assert "Torch IR graph" not in printed.out + printed.err  # the exporter's dump of the graph stays out of the log
