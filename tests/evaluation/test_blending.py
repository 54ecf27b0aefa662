"""The blend of architectures: weights fitted out of fold, members' recipes, names that cannot collide."""

import numpy as np
import pandas as pd
import pytest
from kedro.config import OmegaConfigLoader
from scipy.optimize import check_grad
from scipy.special import log_softmax

from statefarm.evaluation import blending
from statefarm.evaluation.cross_validation import LOGITS, PROBABILITIES
from statefarm.evaluation.metrics import log_loss
from statefarm.modeling.models import ModelConfig
from statefarm.modeling.optim import AnnealerConfig, OptimizerConfig, SchedulerConfig
from statefarm.modeling.training import Recipe, TrainingConfig
from statefarm.parameters import validate_parameters
from statefarm.settings import CONFIG_LOADER_ARGS
from tests.conftest import REPO_ROOT


def _oof(probabilities: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> pd.DataFrame:
    table = pd.DataFrame(probabilities, columns=PROBABILITIES)
    return table.assign(
        img=[f"img_{i}.jpg" for i in range(len(labels))], subject=[f"p{fold:03d}" for fold in folds],
        label=labels, fold=folds,
    )  # fmt: skip


def _two_models_wrong_on_different_images(images: int = 600, seed: int = 0):
    """Two models, each sure and right on its own half of the images and unsure on the other half."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, images)
    folds = np.arange(images) % 3
    models = []
    for half in (0, 1):
        logits = rng.normal(0, 1, (images, 10))
        knows = (np.arange(images) % 2) == half
        logits[knows, labels[knows]] += 5.0
        models.append(np.exp(log_softmax(logits, axis=1)))
    return labels, folds, models


def test_the_blend_beats_each_model_when_they_err_on_different_images():
    labels, folds, (first, second) = _two_models_wrong_on_different_images()
    oof, weights = blending.blend_out_of_fold({"a": _oof(first, labels, folds), "b": _oof(second, labels, folds)})
    blended, blended_labels = oof.loc[:, PROBABILITIES].to_numpy(), oof["label"].to_numpy()  # sorted by image
    assert np.allclose(blended.sum(axis=1), 1.0)
    assert log_loss(blended, blended_labels) < 0.8 * min(log_loss(first, labels), log_loss(second, labels))
    assert weights["log_loss"]["blend"] == pytest.approx(log_loss(blended, blended_labels))
    assert np.allclose(np.exp(oof.loc[:, LOGITS].to_numpy()), blended)  # the confusion matrix reads the logits
    assert set(weights) >= {"models", "all_folds", "fold_0", "fold_1", "fold_2", "log_loss"}


def test_a_useless_model_gets_almost_no_weight():
    labels, folds, (good, _) = _two_models_wrong_on_different_images()
    noise = np.random.default_rng(1).dirichlet(np.ones(10), len(labels))
    stacked = np.log(np.stack([good, noise]))
    weights = blending.fit_blend_weights(stacked, labels)
    assert weights[1] < 0.1 * weights[0]


def test_the_gradient_of_the_blend_loss_is_right():
    labels, _, models = _two_models_wrong_on_different_images(images=50)
    stacked = np.log(np.stack(models))
    for weights in ([0.3, 0.9], [1.0, 0.0], [2.0, 1.5]):
        error = check_grad(
            lambda w: blending.blend_loss(w, stacked, labels)[0],
            lambda w: blending.blend_loss(w, stacked, labels)[1],
            np.array(weights),
        )  # fmt: skip
        assert error < 1e-5


def test_a_fold_is_scored_with_weights_fitted_without_its_images():
    labels, folds, (first, second) = _two_models_wrong_on_different_images()
    tables = {"a": _oof(first, labels, folds), "b": _oof(second, labels, folds)}
    _, weights = blending.blend_out_of_fold(tables)

    # Make model b useless on fold 0 only: fold 0's weights cannot change, the others' must.
    noisy = second.copy()
    noisy[folds == 0] = np.random.default_rng(2).dirichlet(np.ones(10), int((folds == 0).sum()))
    _, after = blending.blend_out_of_fold({"a": tables["a"], "b": _oof(noisy, labels, folds)})
    assert after["fold_0"] == pytest.approx(weights["fold_0"])
    assert after["fold_1"]["b"] < weights["fold_1"]["b"] and after["all_folds"]["b"] < weights["all_folds"]["b"]

    others = folds != 0
    expected = blending.fit_blend_weights(np.log(np.stack([first, second]))[:, others], labels[others])
    assert [weights["fold_0"]["a"], weights["fold_0"]["b"]] == pytest.approx(expected.tolist())


def test_one_fold_is_blended_at_equal_weights_rather_than_weights_fitted_on_it():
    labels, _, (first, second) = _two_models_wrong_on_different_images()
    one_fold = np.zeros(len(labels), dtype=int)
    _, weights = blending.blend_out_of_fold({"a": _oof(first, labels, one_fold), "b": _oof(second, labels, one_fold)})
    assert weights["fold_0"] == {"a": 0.5, "b": 0.5}


def test_models_validated_on_other_images_or_folds_are_refused_by_name():
    labels, folds, (first, second) = _two_models_wrong_on_different_images()
    a = _oof(first, labels, folds)
    with pytest.raises(ValueError, match="out of fold: b and a predicted different images"):
        blending.blend_out_of_fold({"a": a, "b": _oof(second, labels, folds).iloc[1:]})
    with pytest.raises(ValueError, match="b and a disagree on the 'fold'"):
        blending.blend_out_of_fold({"a": a, "b": _oof(second, labels, (folds + 1) % 3)})


def test_the_test_blend_pools_each_image_with_the_given_weights_whatever_the_row_order():
    labels, folds, (first, second) = _two_models_wrong_on_different_images(images=30)
    a, b = _oof(first, labels, folds), _oof(second, labels, folds).iloc[::-1]
    blended = blending.blend_test_predictions({"a": a, "b": b}, {"a": 1.0, "b": 0.0})
    assert list(blended.columns) == ["img", *PROBABILITIES]
    expected = a.sort_values("img").loc[:, PROBABILITIES].to_numpy()
    assert np.allclose(blended.loc[:, PROBABILITIES].to_numpy(), expected / expected.sum(axis=1, keepdims=True))
    with pytest.raises(ValueError, match=r"name different models: \['c'\]"):
        blending.blend_test_predictions({"a": a, "b": b}, {"a": 1.0, "b": 0.0, "c": 1.0})


def test_a_member_recipe_is_the_main_recipe_with_its_own_keys_over_it():
    main = Recipe(
        ModelConfig(name="efficientnet_lite0", pretrained=True, drop_rate=0.2), OptimizerConfig(opt="adamw", lr=1e-3),
        SchedulerConfig(sched="cosine"), AnnealerConfig(enabled=False),
        TrainingConfig(epochs=2, batch_size=64, label_smoothing=0.1),
    )  # fmt: skip
    member = blending.MemberRecipe(model={"name": "statefarm_small_cnn", "pretrained": False}, training={"epochs": 5})
    recipe = blending.member_recipe(main, member)
    assert (recipe.model.name, recipe.model.pretrained, recipe.model.drop_rate) == ("statefarm_small_cnn", False, 0.2)
    assert (recipe.training.epochs, recipe.training.batch_size, recipe.training.label_smoothing) == (5, 64, 0.1)
    assert recipe.optimizer == main.optimizer
    with pytest.raises(ValueError, match=r"blend.members.cnn.training.epochs"):
        blending.member_recipe(main, blending.MemberRecipe(training={"epochs": 0}), "blend.members.cnn.")
    with pytest.raises(ValueError, match="augment"):
        blending.MemberRecipe.model_validate({"augment": []})  # augmentation is tuned once, for every model


def _parameters(env: str) -> dict:
    """The parameters of ``env`` as ``kedro run --env`` loads them."""
    return OmegaConfigLoader(str(REPO_ROOT / "conf"), env=env, **CONFIG_LOADER_ARGS)["parameters"]


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"cnn": {"training": {"epoch": 5}}}, r"blend.members.cnn.training.epoch: Extra inputs are not permitted"),
        ({"cnn": {"optimizer": {"opt": "adamx"}}}, r"blend.members.cnn.optimizer.opt: .*unknown optimizer"),
        ({"cnn": {"layers": {}}}, r"blend.members.cnn.layers: Extra inputs"),
        ({"blend": {}}, r"member name 'blend'"),
        ({"fold_1": {}}, r"member name 'fold_1'"),
        ({"Small CNN": {}}, r"member name 'Small CNN'"),
    ],
)
def test_a_bad_member_stops_the_run_naming_it(members, message):
    with pytest.raises(ValueError, match=message):
        validate_parameters(_parameters("demo") | {"blend": {"members": members}})


def test_the_real80x60_environment_fine_tunes_lite0_alone_upscaled_and_a_small_cnn_can_join_at_the_caches_size():
    raw = _parameters("real80x60")
    parameters = validate_parameters(raw)
    assert parameters.model.name == "efficientnet_lite0" and parameters.model.input_size == (96, 128)
    assert parameters.blend.members == {} and not parameters.training.use_tuned_augmentations  # no scan to wait for
    assert parameters.pseudo_label.labelled_share == 0.5  # the pseudo stage fine-tunes on half the labelled images
    # The blend the README shows how to add: the small CNN from scratch, at the cache's 60x80.
    small_cnn = {
        "model": {"name": "statefarm_small_cnn", "pretrained": False, "pretrained_file": None, "weight_map": None,
                  "input_size": None},
        "training": {"epochs": 5, "label_smoothing": 0.0},
        "runtime": {"cpu_amp": True},
    }  # fmt: skip
    recipe = blending.member_recipe(parameters.recipe(), blending.MemberRecipe.model_validate(small_cnn))
    assert recipe.model.name == "statefarm_small_cnn" and recipe.model.input_size is None
    assert recipe.training.epochs > parameters.training.epochs
    assert validate_parameters(raw | {"blend": {"members": {"small_cnn": small_cnn}}}).blend.members["small_cnn"]
