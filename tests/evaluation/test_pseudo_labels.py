import warnings

import numpy as np
import pandas as pd
import pytest

from statefarm.data.layout import CLASS_NAMES
from statefarm.evaluation.pseudo_labels import (
    PseudoLabelConfig,
    PseudoLabelLeakError,
    check_pseudo_label_sources,
    check_pseudo_labels,
    make_pseudo_labels,
    pseudo_label_sources,
    summarize_pseudo_labels,
)


@pytest.fixture
def test_predictions():
    probabilities = np.full((4, 10), 0.02)
    probabilities[0, 3], probabilities[1, 7], probabilities[2, 0] = 0.82, 0.5, 0.3
    probabilities[1] /= probabilities[1].sum()
    probabilities[2] /= probabilities[2].sum()
    probabilities[3] = 0.1
    frame = pd.DataFrame(probabilities, columns=list(CLASS_NAMES))
    frame.insert(0, "img", [f"img_t{k}.jpg" for k in range(4)])
    return frame


def test_soft_labels_keep_the_probabilities_and_sharpen_with_temperature(test_predictions):
    soft = make_pseudo_labels(test_predictions, PseudoLabelConfig(mode="soft"))
    np.testing.assert_allclose(soft[list(CLASS_NAMES)].to_numpy(), test_predictions[list(CLASS_NAMES)], rtol=1e-6)
    sharp = make_pseudo_labels(test_predictions, PseudoLabelConfig(mode="soft", temperature=0.5))
    assert (sharp[list(CLASS_NAMES)].max(axis=1) > soft[list(CLASS_NAMES)].max(axis=1) - 1e-6).all()
    np.testing.assert_allclose(sharp[list(CLASS_NAMES)].sum(axis=1), 1.0, rtol=1e-6)


def test_hard_labels_and_threshold(test_predictions):
    hard = make_pseudo_labels(test_predictions, PseudoLabelConfig(mode="hard", threshold=0.7))
    assert hard["img"].tolist() == ["img_t0.jpg", "img_t1.jpg"]
    assert hard[list(CLASS_NAMES)].to_numpy().argmax(axis=1).tolist() == [3, 7]
    assert set(np.unique(hard[list(CLASS_NAMES)].to_numpy())) == {0.0, 1.0}
    summary = summarize_pseudo_labels(hard, test_images=4)
    assert summary["kept_fraction"] == 0.5 and summary["class_share_c3"] == 0.5
    with pytest.raises(ValueError, match="keeps none of 4 test images"):
        make_pseudo_labels(test_predictions, PseudoLabelConfig(threshold=0.99))


def test_a_labelled_image_among_pseudo_labels_is_refused():
    index = pd.DataFrame(
        {
            "img": ["img_1.jpg", "img_2.jpg", "img_t0.jpg", "img_t1.jpg"],
            "split": ["train", "train", "test", "test"],
            "valid": [True, True, True, False],
        }
    )
    split = {"train_drivers": ["p001"], "valid_drivers": ["p002"]}
    check_pseudo_labels(pd.DataFrame({"img": ["img_t0.jpg"]}), index, split)
    with pytest.raises(PseudoLabelLeakError, match=r"labelled \(train or validation\) images: \['img_2.jpg'\]"):
        check_pseudo_labels(pd.DataFrame({"img": ["img_t0.jpg", "img_2.jpg"]}), index, split)
    with pytest.raises(PseudoLabelLeakError, match="not readable test images"):
        check_pseudo_labels(pd.DataFrame({"img": ["img_t1.jpg"]}), index, split)


def test_pseudo_labels_from_a_model_that_saw_a_validation_driver_are_refused():
    fold_0 = {"fold": 0, "train_drivers": ["p003", "p004", "p005"], "valid_drivers": ["p001", "p002"]}
    own_baseline = pseudo_label_sources(["baseline.fold_0"], fold_0["train_drivers"])
    check_pseudo_label_sources(own_baseline, fold_0)
    other_fold = pseudo_label_sources(["baseline.fold_1"], ["p001", "p002", "p005"])
    with pytest.raises(PseudoLabelLeakError, match=r"\['baseline.fold_1'\].*validation driver\(s\) \['p001', 'p002'\]"):
        check_pseudo_label_sources(other_fold, fold_0)


def test_each_fold_pseudo_model_learns_only_from_its_own_baseline_fold():
    from statefarm.pipelines.chain import model_pipelines
    from statefarm.pipelines.pseudo_label.pipeline import create_pipeline

    folds = [0, 1, 2]
    labelling = create_pipeline(folds, kind="pseudo", labels_from="baseline")
    training = model_pipelines("pseudo", folds, labels_from="baseline")["training"]
    for k in folds:
        [make] = [n for n in labelling.nodes if n.name == f"pseudo.fold_{k}.make_pseudo_labels"]
        assert {i for i in make.inputs if i.startswith("baseline.")} == {
            f"baseline.fold_{k}.test_logits",
            f"baseline.fold_{k}.test_neighbours",
            f"baseline.fold_{k}.model",
            "baseline.calibration",  # its temperature fitted without fold k's labels
            "baseline.leave_fold_out_smoothing",  # chosen without fold k's labels (test_neighbours.py)
        }
        [train] = [n for n in training.nodes if n.name == f"pseudo.fold_{k}.train_model"]
        assert {f"pseudo.fold_{k}.pseudo_labels", f"baseline.fold_{k}.model", f"fold_{k}.driver_split"} <= set(
            train.inputs
        )


def test_the_labelling_node_smooths_with_the_choice_made_without_its_fold():
    from scipy.special import softmax

    from statefarm.evaluation.neighbours import find_neighbours, smooth
    from statefarm.pipelines.pseudo_label.nodes import make_pseudo_labels as make_node

    rng = np.random.default_rng(0)
    names = [f"img_t{k}.jpg" for k in range(40)]
    logits = pd.DataFrame(rng.normal(0, 2, (40, 10)), columns=[f"logit_{c}" for c in CLASS_NAMES]).assign(img=names)
    logits = logits[["img", *[f"logit_{c}" for c in CLASS_NAMES]]]
    neighbours = find_neighbours(rng.normal(size=(40, 8)), names, 5)
    choices = {
        "fold_0": {"neighbours": 3, "weight": 0.6, "weighting": "uniform", "chosen_on_folds": [1, 2]},
        "fold_1": {"neighbours": 5, "weight": 0.9, "weighting": "similarity", "chosen_on_folds": [0, 2]},
    }
    model = {"model_info": {"train_drivers": ["p001"]}}
    # Calibrated first, with the temperature fitted without the fold, not the submission's.
    calibration = {"temperatures": {"0": 9.0, "1": 9.0}, "temperatures_without_fold": {"0": 2.0, "1": 2.0}}
    smoothed = PseudoLabelConfig(smooth=True)
    labels, _ = make_node(
        logits, neighbours, model, calibration, choices, smoothed, model_name="baseline.fold_0", fold=0
    )
    probabilities = softmax(logits.drop(columns="img").to_numpy() / 2.0, axis=1)
    expected = smooth(probabilities, neighbours, 3, 0.6, "uniform")
    np.testing.assert_allclose(labels[list(CLASS_NAMES)].to_numpy(), expected, atol=1e-6)
    plain, _ = make_node(
        logits,
        neighbours,
        model,
        calibration,
        choices,
        PseudoLabelConfig(smooth=False),
        model_name="baseline.fold_0",
        fold=0,
    )
    np.testing.assert_allclose(plain[list(CLASS_NAMES)].to_numpy(), probabilities, atol=1e-6)  # no smoothing
    with pytest.raises(ValueError, match="baseline.fold_1: its test neighbours are of other images"):
        make_node(
            logits, neighbours.iloc[::-1], model, calibration, choices, smoothed, model_name="baseline.fold_1", fold=1
        )


def _test_logits(rng, names):
    columns = [f"logit_{c}" for c in CLASS_NAMES]
    return pd.DataFrame(rng.normal(0, 2, (len(names), 10)), columns=columns).assign(img=names)[["img", *columns]]


def test_blended_labels_pool_the_fold_baselines_with_the_weights_fitted_without_the_fold():
    from scipy.special import log_softmax

    from statefarm.evaluation.neighbours import find_neighbours
    from statefarm.pipelines.pseudo_label.nodes import make_blended_pseudo_labels

    rng = np.random.default_rng(0)
    names = [f"img_t{k}.jpg" for k in range(30)]
    logits = {name: _test_logits(rng, names) for name in ("baseline", "baseline.cnn")}
    neighbours = find_neighbours(rng.normal(size=(30, 8)), names, 3)
    smoothing = {"fold_1": {"neighbours": 3, "weight": 0.5, "weighting": "uniform", "chosen_on_folds": [0]}}
    models = {
        "baseline": {"model_info": {"train_drivers": ["p001", "p002"]}},
        "baseline.cnn": {"model_info": {"train_drivers": ["p001", "p002"]}},
    }
    weights = {"fold_1": {"baseline": 0.7, "baseline.cnn": 0.5}, "all_folds": {"baseline": 1.0, "baseline.cnn": 0.0}}
    # Each model calibrated with its temperature fitted without fold 1: the weights were fitted on calibrated ones.
    without_fold_1 = {"baseline": 2.0, "baseline.cnn": 1.25}
    calibrations = {name: {"temperatures_without_fold": {"1": t}} for name, t in without_fold_1.items()}

    def teachers_of(models):
        return [
            item for name in models for item in (logits[name], neighbours, models[name], calibrations[name], smoothing)
        ]

    teachers = teachers_of(models)
    unsmoothed = PseudoLabelConfig(smooth=False)
    labels, sources = make_blended_pseudo_labels(weights, unsmoothed, *teachers, models=list(models), fold=1)

    log_p = [log_softmax(logits[name].drop(columns="img").to_numpy() / without_fold_1[name], axis=1) for name in models]
    expected = np.exp(log_softmax(0.7 * log_p[0] + 0.5 * log_p[1], axis=1))  # fold 1's weights, not all folds'
    np.testing.assert_allclose(labels[list(CLASS_NAMES)].to_numpy(), expected, atol=1e-5)
    assert sources == {"models": ["baseline.fold_1", "baseline.cnn.fold_1"], "train_drivers": ["p001", "p002"]}

    models["baseline.cnn"] = {"model_info": {"train_drivers": ["p001", "p003"]}}  # saw fold 1's validation driver
    teachers = teachers_of(models)
    _, sources = make_blended_pseudo_labels(weights, unsmoothed, *teachers, models=list(models), fold=1)
    with pytest.raises(PseudoLabelLeakError, match=r"validation driver\(s\) \['p003'\]"):
        check_pseudo_label_sources(sources, {"fold": 1, "train_drivers": ["p001", "p002"], "valid_drivers": ["p003"]})

    logits["baseline.cnn"] = logits["baseline.cnn"].iloc[::-1]
    teachers = teachers_of(models)
    with pytest.raises(ValueError, match="baseline.cnn.fold_1 predicted other test images than baseline.fold_1"):
        make_blended_pseudo_labels(weights, unsmoothed, *teachers, models=list(models), fold=1)


@pytest.mark.parametrize("teacher", ["own", "blend"])
def test_with_a_blend_each_pseudo_model_learns_from_its_teacher_of_the_same_fold(teacher):
    from statefarm.pipelines.chain import PipelinePlan, build_pipelines

    folds = [0, 1]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        chain = build_pipelines(PipelinePlan(folds, ["cnn"], teacher, True))["pseudo_label"]
    assert not [w for w in caught if "interrupted" in str(w.message)]  # each namespace runs as one block
    nodes = {node.name: node for node in chain.nodes}
    for k in folds:
        for pseudo, baseline in (("pseudo", "baseline"), ("pseudo.cnn", "baseline.cnn")):
            train = nodes[f"{pseudo}.fold_{k}.train_model"]
            labels = f"blend_labels.fold_{k}" if teacher == "blend" else f"{pseudo}.fold_{k}"
            assert {f"{labels}.pseudo_labels", f"{labels}.pseudo_label_sources", f"{baseline}.fold_{k}.model"} <= set(
                train.inputs
            )
        if teacher == "blend":
            make = nodes[f"blend_labels.fold_{k}.make_pseudo_labels"]
            models = {name for name in make.inputs if name.endswith(".model")}
            assert models == {f"baseline.fold_{k}.model", f"baseline.cnn.fold_{k}.model"}
            assert "baseline.blend.blend_weights" in make.inputs
            assert not [name for name in nodes if name.endswith("make_pseudo_labels") and "blend" not in name]
        else:
            assert (
                f"pseudo.cnn.fold_{k}.make_pseudo_labels" in nodes
                and "blend_labels.fold_0.make_pseudo_labels" not in nodes
            )
