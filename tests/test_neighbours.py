"""Test-neighbour smoothing: the search, the blend, and the choice made out of fold."""

import numpy as np
import pandas as pd
import pytest
import torch

from statefarm.models import ModelConfig, create_model
from statefarm.neighbours import (
    NeighbourConfig,
    choose_smoothing,
    find_neighbours,
    penultimate_features,
    smooth,
    smooth_out_of_fold,
)

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
