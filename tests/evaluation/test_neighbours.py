"""Test-neighbour smoothing: the search, the blend, and the choice made out of fold."""

import numpy as np
import pandas as pd
import pytest
import torch

from statefarm.evaluation.cross_validation import LOGITS
from statefarm.evaluation.inference import InferenceConfig, predict_probabilities
from statefarm.evaluation.neighbours import (
    NeighbourConfig,
    choose_smoothing,
    choose_smoothing_without_each_fold,
    find_neighbours,
    find_neighbours_at_density,
    penultimate_features,
    pixel_features,
    smooth,
    smooth_out_of_fold,
)
from statefarm.modeling.models import ModelConfig, create_model, model_data_config
from statefarm.pipelines.inference.nodes import (
    find_test_neighbours_in_pixels,
    find_valid_neighbours,
    predict_test_images,
)
from statefarm.runtime.config import RuntimeConfig

CPU = RuntimeConfig(device="cpu", num_workers=0)

CLASSES = [f"c{k}" for k in range(10)]


def video(clips: int = 30, frames: int = 8, seed: int = 0):
    """Clips of near-identical frames, one class per clip, and noisy per-frame predictions.

    Returns features, labels, and probabilities that favour the right class on average
    but often name another on a single frame: what a frame-by-frame classifier gives.
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clips, 32))
    features = np.repeat(centres, frames, axis=0) + rng.normal(0, 0.1, (clips * frames, 32))
    labels = np.repeat(rng.integers(0, 10, clips), frames)
    logits = rng.normal(0, 1.5, (len(labels), 10))
    logits[np.arange(len(labels)), labels] += 1.5
    probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return features.astype(np.float32), labels, probabilities


def test_neighbours_are_the_nearest_other_images_in_order():
    features, labels, _ = video()
    names = [f"img_{i}.jpg" for i in range(len(labels))]
    table = find_neighbours(features, names, k=5)
    assert list(table["img"]) == names
    indices = table[[f"neighbour_{j}" for j in range(5)]].to_numpy()
    assert not (indices == np.arange(len(names))[:, None]).any()  # never itself
    assert (labels[indices] == labels[:, None]).all()  # the same clip: the other frames
    projected = find_neighbours(features, names, k=5, dims=16)  # on 16 principal components: still the clip
    assert (labels[projected[[f"neighbour_{j}" for j in range(5)]].to_numpy()] == labels[:, None]).all()
    distances = table[[f"distance_{j}" for j in range(5)]].to_numpy()
    assert (np.diff(distances, axis=1) >= -1e-6).all() and (distances >= -1e-6).all()
    twins = find_neighbours(np.array([[1.0, 0], [1.0, 0], [0, 1.0]]), ["a", "b", "c"], k=5)
    assert twins["neighbour_0"].tolist()[:2] == [1, 0] and twins.shape[1] == 1 + 2 * 2  # k capped at n - 1


def test_smoothing_blends_with_the_neighbours_mean_and_keeps_probabilities():
    _, _, probabilities = video()
    table = find_neighbours(video()[0], [str(i) for i in range(len(probabilities))], k=3)
    assert smooth(probabilities, table, 3, 0.0, "uniform") is probabilities
    nearest = probabilities[table["neighbour_0"].to_numpy()]
    assert np.allclose(smooth(probabilities, table, 1, 0.4, "uniform"), 0.6 * probabilities + 0.4 * nearest)
    for weighting in ("uniform", "similarity"):
        smoothed = smooth(probabilities, table, 3, 0.7, weighting)
        assert np.allclose(smoothed.sum(1), 1) and (smoothed > 0).all()


def test_the_choice_smooths_video_frames_and_gains_little_from_unrelated_images():
    config = NeighbourConfig(max_neighbours=10, neighbours=[1, 3, 10])
    groups = []
    for seed in (0, 1):
        features, labels, probabilities = video(seed=seed)
        groups.append((probabilities, labels, find_neighbours(features, [str(i) for i in range(len(labels))], 10)))
    choice, grid = choose_smoothing(groups, config)
    assert choice["weight"] >= 0.5 and choice["log_loss_after"] < 0.8 * choice["log_loss_before"]
    gain = choice["log_loss_before"] - choice["log_loss_after"]
    assert len(grid) == len(config.neighbours) * len(config.weights) * len(config.weightings)

    shuffled = [(p, y, find_neighbours(np.random.default_rng(9).normal(size=(len(y), 32)), list(map(str, y)), 10))
                for p, y, _ in groups]  # fmt: skip
    choice, _ = choose_smoothing(shuffled, config)
    assert choice["log_loss_before"] - choice["log_loss_after"] < 0.25 * gain  # random neighbours: mere shrinkage


def test_out_of_fold_smoothing_uses_each_folds_own_images_and_keeps_the_unsmoothed_score():
    parts, tables = [], {}
    for fold in (0, 1):
        features, labels, probabilities = video(seed=fold)
        names = [f"f{fold}_{i}.jpg" for i in range(len(labels))]
        part = pd.DataFrame(probabilities, columns=CLASSES).assign(img=names, label=labels, fold=fold)
        parts.append(part.iloc[::-1])  # the OOF table's order is not the neighbour table's
        tables[fold] = find_neighbours(features, names, 10)
    oof = pd.concat(parts, ignore_index=True)
    smoothed, choice, _ = smooth_out_of_fold(oof, tables, NeighbourConfig(max_neighbours=10), CLASSES)
    assert smoothed[["img", "label", "fold"]].equals(oof[["img", "label", "fold"]])
    before = -np.log(smoothed["p_label_unsmoothed"]).mean()
    after = -np.log(smoothed[CLASSES].to_numpy()[np.arange(len(oof)), smoothed["label"]]).mean()
    assert before == pytest.approx(choice["log_loss_before"]) and after == pytest.approx(choice["log_loss_after"])
    with pytest.raises(ValueError, match="fold 1: its neighbour table and its out-of-fold images differ"):
        smooth_out_of_fold(oof[oof["img"] != "f1_3.jpg"], tables, NeighbourConfig(max_neighbours=10), CLASSES)
    with pytest.raises(ValueError, match="less than or equal to 1"):
        NeighbourConfig(weights=[0.5, 1.5])


@pytest.mark.parametrize("name", ["statefarm_small_cnn", "efficientnet_lite0"])
def test_features_are_what_the_classifier_sees(name):
    model = create_model(ModelConfig(name=name, pretrained=False)).eval()
    images = torch.randn(3, 3, 48, 64)
    with torch.no_grad():
        logits, features = penultimate_features(model, lambda: model(images))
        assert torch.allclose(model.get_classifier()(torch.from_numpy(features)), logits, atol=1e-5)
    assert features.shape[0] == 3 and features.shape[1] == model.get_classifier().in_features


def test_pixel_neighbours_are_the_other_frames_of_a_clip_whatever_the_exposure():
    rng = np.random.default_rng(0)
    scenes = rng.integers(60, 190, (12, 1, 48, 64, 3))
    frames = scenes + rng.integers(-8, 9, (12, 5, 48, 64, 3))  # five frames of each scene
    frames[:, 1::2] += 40  # the camera's exposure jumps on every other frame
    images = frames.reshape(-1, 48, 64, 3).astype(np.uint8)
    scene = np.repeat(np.arange(12), 5)
    rows = rng.permutation(len(images))  # the cache's rows in any order
    features = pixel_features(images, rows, (12, 16), block=7)
    assert features.shape == (60, 12 * 16 * 3)
    np.testing.assert_allclose(features, pixel_features(images, rows, (12, 16)), atol=1e-4)  # blocks change nothing
    darker = pixel_features(images - np.uint8(30), rows, (12, 16))  # no pixel is below 30
    np.testing.assert_allclose(darker, features, atol=1e-3)  # each image less its own mean
    table = find_neighbours(features, [str(row) for row in rows], k=4)
    neighbours = table[[f"neighbour_{j}" for j in range(4)]].to_numpy()
    assert (scene[rows][neighbours] == scene[rows][:, None]).all()


def test_the_inference_nodes_search_pixels_when_asked(prepared_data):
    image_index, cache = prepared_data
    torch.manual_seed(0)
    model = create_model(ModelConfig(name="statefarm_small_cnn")).eval()
    checkpoint = {
        "model": model.state_dict(),
        "model_info": {"name": "statefarm_small_cnn", "num_classes": 10},
        "data_config": model_data_config(model, cache.image_size),
    }
    params = {"batch_size": 16, "neighbours": {"max_neighbours": 3}}
    pixels = {**params, "neighbours": {"max_neighbours": 3, "space": "pixels", "pixel_size": [12, 16]}}
    every = {**pixels, "neighbours": {**pixels["neighbours"], "match_test_density": False}}
    params, pixels, every = (InferenceConfig.model_validate(group) for group in (params, pixels, every))
    test = image_index[(image_index["split"] == "test") & image_index["valid"]]
    names = test["img"].tolist()
    valid = image_index[(image_index["split"] == "train") & image_index["valid"]].head(12)
    valid_logits = np.log(predict_probabilities(checkpoint, cache, valid["img"].tolist(), params, CPU))
    valid_predictions = valid.loc[:, ["img", "subject", "label"]].assign(
        **dict(zip(LOGITS, valid_logits.T, strict=True))
    )
    checkpoint["metrics"] = {"valid_loss": -valid_logits[np.arange(len(valid)), valid["label"]].mean()}

    pixel_table = find_test_neighbours_in_pixels(cache, image_index, pixels)
    assert pixel_table.equals(find_neighbours(pixel_features(cache.images, cache.rows_of(names), (12, 16)), names, 3))
    model_space = find_test_neighbours_in_pixels(cache, image_index, params)
    assert model_space.empty  # each model searches its own
    logits, table = predict_test_images(
        checkpoint, valid_predictions, cache, image_index, pixel_table, pixels, CPU, seed=0
    )
    model_logits, model_table = predict_test_images(
        checkpoint, valid_predictions, cache, image_index, model_space, params, CPU, seed=0
    )
    pd.testing.assert_frame_equal(logits, model_logits)  # the same predictions, whichever space
    expected = np.log(predict_probabilities(checkpoint, cache, names, params, CPU))
    np.testing.assert_allclose(logits.drop(columns="img").to_numpy(), expected, atol=1e-4)
    assert table.equals(pixel_table)  # every fold model shares the one search
    assert not table.equals(model_table)
    # A table left by a run over other test images, or with other neighbour counts, is refused.
    for stale in (pixel_table.iloc[1:], pixel_table.drop(columns=["neighbour_2", "distance_2"])):
        with pytest.raises(ValueError, match="rerun find_test_neighbours_in_pixels"):
            predict_test_images(checkpoint, valid_predictions, cache, image_index, stale, pixels, CPU, seed=0)

    valid_table = find_valid_neighbours(checkpoint, cache, valid, table, every, CPU, seed=0)
    valid_features = pixel_features(cache.images, cache.rows_of(valid["img"].tolist()), (12, 16))
    assert valid_table.equals(find_neighbours(valid_features, list(valid["img"]), 3))


def walks(clips: int, frames: int, keep: float, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """A random share ``keep`` of the frames of videos that drift a little at a time (features, names)."""
    rng = np.random.default_rng(seed)
    drift = np.cumsum(rng.normal(0, 0.05, (clips, frames, 64)), axis=1)
    features = (rng.normal(size=(clips, 1, 64)) + drift).reshape(-1, 64)
    features = features[rng.random(len(features)) < keep]
    return features, [f"{seed}_{i}" for i in range(len(features))]


def test_validation_neighbours_are_searched_at_the_test_sets_spacing():
    test_features, test_names = walks(clips=40, frames=200, keep=0.25, seed=1)  # the test set: a quarter
    test_distance = float(find_neighbours(test_features, test_names, 10)["distance_0"].median())
    features, names = walks(clips=6, frames=200, keep=1)  # a held-out fold has every frame

    table, share = find_neighbours_at_density(features, names, 10, None, test_distance, seed=0)
    assert share == 0.25
    assert table["distance_0"].median() == pytest.approx(test_distance, rel=0.5)
    indices = table[[f"neighbour_{j}" for j in range(10)]].to_numpy()
    assert len(np.unique(indices)) <= 0.25 * len(names) + 1  # neighbours come from the thinned pool ...
    assert not (indices == np.arange(len(names))[:, None]).any()  # ... never the image itself, in it or not
    assert len(table) == len(names) and not table.isna().any().any()  # and every image is smoothed
    dense, _ = find_neighbours_at_density(features, names, 10, None, 0.2 * test_distance, seed=0)
    assert _ == 1.0 and dense.equals(find_neighbours(features, names, 10))


def test_each_folds_pseudo_label_smoothing_is_chosen_without_its_labels():
    parts, tables = [], {}
    for fold in (0, 1, 2):
        features, labels, probabilities = video(seed=fold)
        names = [f"f{fold}_{i}.jpg" for i in range(len(labels))]
        parts.append(pd.DataFrame(probabilities, columns=CLASSES).assign(img=names, label=labels, fold=fold))
        tables[fold] = find_neighbours(features, names, 10)
    oof = pd.concat(parts, ignore_index=True)
    config = NeighbourConfig(max_neighbours=10, neighbours=[1, 3, 10])
    choices = choose_smoothing_without_each_fold(oof, tables, config, CLASSES)
    assert choices[0]["chosen_on_folds"] == [1, 2] and choices[0]["weight"] > 0

    scrambled = oof.copy()
    in_fold_0 = scrambled["fold"] == 0
    scrambled.loc[in_fold_0, "label"] = np.random.default_rng(5).integers(0, 10, in_fold_0.sum())
    rechosen = choose_smoothing_without_each_fold(scrambled, tables, config, CLASSES)
    assert rechosen[0] == choices[0]  # fold 0's own labels play no part in its choice
    assert rechosen[1]["log_loss_before"] != choices[1]["log_loss_before"]  # they do in the others'

    alone = choose_smoothing_without_each_fold(oof[in_fold_0], {0: tables[0]}, config, CLASSES)
    assert alone[0]["weight"] == 0 and alone[0]["chosen_on_folds"] == []  # nothing else to choose on: off
