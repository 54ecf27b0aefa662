"""Nodes of ``pseudo_label``: a fold model's test predictions as targets, and the comparison after."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy.special import softmax

from statefarm.data.submission import SubmissionConfig
from statefarm.evaluation import blending
from statefarm.evaluation import cross_validation as cv
from statefarm.evaluation import pseudo_labels as pseudo
from statefarm.evaluation.metrics import as_metric_history, probability_scores
from statefarm.evaluation.neighbours import smooth
from statefarm.pipelines import names

logger = logging.getLogger(__name__)


def _teacher_probabilities(
    test_logits: pd.DataFrame,
    test_neighbours: pd.DataFrame,
    smoothing: dict,
    calibration: dict,
    config: pseudo.PseudoLabelConfig,
    model_name: str,
    fold: int,
) -> np.ndarray:
    """A fold model's test probabilities, calibrated with the temperature fitted without fold ``fold``, and
    neighbour-smoothed as chosen without it when ``config.smooth``.

    Calibrated as the out-of-fold probabilities the smoothing and the blend weights were
    chosen on: raw, an overconfident model's labels would be sharper than it is right, and
    in a blend it would outweigh the others.
    """
    temperature = cv.temperature_without_fold(calibration, fold, names.kind_of(model_name))
    probabilities = softmax(test_logits.loc[:, cv.LOGITS].to_numpy(np.float64) / temperature, axis=1)
    logger.info(
        "Pseudo-labels of fold %d from %s at temperature %.3f, fitted without it", fold, model_name, temperature
    )
    if not config.smooth:
        return probabilities
    choice = smoothing[names.fold(fold)]
    if not test_neighbours["img"].equals(test_logits["img"]):
        raise ValueError(f"{model_name}: its test neighbours are of other images than its test predictions")
    logger.info(
        "Pseudo-labels of fold %d from %s smoothed over %d %s neighbours at weight %.2f (chosen on folds %s)",
        fold, model_name, choice["neighbours"], choice["weighting"], choice["weight"],
        choice["chosen_on_folds"] or "none",
    )  # fmt: skip
    return smooth(probabilities, test_neighbours, choice["neighbours"], choice["weight"], choice["weighting"])


def make_pseudo_labels(
    test_logits: pd.DataFrame,
    test_neighbours: pd.DataFrame,
    labelling_model: dict,
    calibration: dict,
    leave_fold_out_smoothing: dict,
    config: pseudo.PseudoLabelConfig,
    model_name: str,
    fold: int,
) -> tuple[pd.DataFrame, dict]:
    """Soft or hard targets for the test images the model is confident about, and where they come from.

    The predictions are calibrated with the temperature fitted on the other folds' images
    (``calibration``); with ``pseudo_label.smooth``, then neighbour-smoothed as chosen on
    them (``leave_fold_out_smoothing``): never on this fold's labels.
    The sources name every labelled driver the labelling model saw, so that training
    can refuse labels from a model that saw its validation drivers.
    """
    probabilities = _teacher_probabilities(
        test_logits, test_neighbours, leave_fold_out_smoothing, calibration, config, model_name, fold
    )
    predictions = pd.DataFrame(probabilities, columns=cv.PROBABILITIES).assign(img=test_logits["img"].to_numpy())
    sources = pseudo.pseudo_label_sources([model_name], labelling_model["model_info"]["train_drivers"])
    return pseudo.make_pseudo_labels(predictions, config), sources


def make_blended_pseudo_labels(
    blend_weights: dict, config: pseudo.PseudoLabelConfig, *teachers, models: list[str], fold: int
) -> tuple[pd.DataFrame, dict]:
    """Fold ``fold``'s targets from the blend of every model's fold-``fold`` baseline (``blend.teacher: blend``).

    ``teachers`` is, for each of ``models`` in turn, its fold model's ``test_logits``,
    ``test_neighbours``, the model, and its kind's ``calibration`` and ``leave_fold_out_smoothing``. They are
    pooled with the blend weights fitted without fold ``fold``'s images
    (``blend_weights["fold_<k>"]``), so its labels never reach the labels of its pseudo models.
    """
    weights = blend_weights[names.fold(fold)]
    teacher_models, log_probabilities, drivers = [], [], set()
    first_logits = teachers[0]
    for name, (logits, neighbours, model, calibration, smoothing) in zip(
        models, (teachers[i : i + 5] for i in range(0, len(teachers), 5)), strict=True
    ):
        if not logits["img"].equals(first_logits["img"]):
            raise ValueError(
                f"{names.fold_model(name, fold)} predicted other test images than {names.fold_model(models[0], fold)}"
            )
        probabilities = _teacher_probabilities(
            logits, neighbours, smoothing, calibration, config, names.fold_model(name, fold), fold
        )
        log_probabilities.append(blending.floored_log(probabilities))
        teacher_models.append(names.fold_model(name, fold))
        drivers |= set(model["model_info"]["train_drivers"])
    pooled = np.exp(blending.pool(np.stack(log_probabilities), np.array([weights[name] for name in models])))
    logger.info(
        "Pseudo-labels of fold %d from the blend of %s (weights %s, fitted without fold %d)",
        fold, ", ".join(teacher_models), ", ".join(f"{weights[name]:.2f}" for name in models), fold,
    )  # fmt: skip
    predictions = pd.DataFrame(pooled, columns=cv.PROBABILITIES).assign(img=first_logits["img"].to_numpy())
    return pseudo.make_pseudo_labels(predictions, config), pseudo.pseudo_label_sources(teacher_models, sorted(drivers))


def track_pseudo_labels(pseudo_labels: pd.DataFrame, test_logits: pd.DataFrame) -> dict:
    """The share of test images kept and the class distribution, as MLflow metrics."""
    return as_metric_history(pseudo.summarize_pseudo_labels(pseudo_labels, len(test_logits)))


def _score_rows(name: str, oof: pd.DataFrame, probabilities: np.ndarray, clip: float) -> list[dict]:
    labels = oof["label"].to_numpy()
    rows = [{"model": name, "subject": "all", "images": len(oof), **probability_scores(probabilities, labels, clip)}]
    for subject, index in oof.groupby("subject", sort=True).indices.items():
        scores = probability_scores(probabilities[index], labels[index], clip)
        rows.append({"model": name, "subject": subject, "images": len(index), **scores})
    return rows


def compare_models(baseline_oof: pd.DataFrame, pseudo_oof: pd.DataFrame, submission: SubmissionConfig) -> pd.DataFrame:
    """Baseline against pseudo-labelled, out of fold over the same drivers, overall and per driver.

    Also their blends, arithmetic and geometric: both models of a fold never saw its
    validation drivers, so this is the one ensemble that can be scored out of fold.
    """
    baseline_oof = baseline_oof.sort_values("img", ignore_index=True)
    pseudo_oof = pseudo_oof.sort_values("img", ignore_index=True)
    if not baseline_oof["img"].equals(pseudo_oof["img"]):
        raise ValueError("baseline and pseudo models were validated on different images; the comparison would lie")
    if not (baseline_oof["fold"].to_numpy() == pseudo_oof["fold"].to_numpy()).all():
        raise ValueError("baseline and pseudo models validated an image in different folds; the blend would leak")
    models = {name: oof.loc[:, cv.PROBABILITIES].to_numpy(np.float64) for name, oof in
              (("baseline", baseline_oof), ("pseudo", pseudo_oof))}  # fmt: skip
    for method in ("arithmetic", "geometric"):
        models[f"blend_{method}"] = cv.mean_probabilities(list(models.values())[:2], method)
    rows = [row for name, p in models.items() for row in _score_rows(name, baseline_oof, p, submission.clip)]
    return pd.DataFrame(rows)


def track_comparison(comparison: pd.DataFrame) -> dict:
    """``comparison.<model>.<score>`` over all drivers, as MLflow metrics."""
    overall = comparison[comparison["subject"] == "all"]
    return as_metric_history(
        {
            f"{row['model']}.{score}": row[score]
            for row in overall.to_dict("records")
            for score in ("log_loss", "log_loss_clipped", "accuracy")
        }
    )
