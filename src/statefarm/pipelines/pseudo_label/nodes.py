"""Nodes of ``pseudo_label``: a fold model's test predictions as targets, and the comparison after."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import softmax

from statefarm import cross_validation as cv
from statefarm import pseudo_labels as pseudo
from statefarm.config import parse_params
from statefarm.metrics import as_metric_history, probability_scores
from statefarm.neighbours import smooth

logger = logging.getLogger(__name__)


def make_pseudo_labels(
    test_logits: pd.DataFrame,
    test_neighbours: pd.DataFrame,
    labelling_model: dict,
    leave_fold_out_smoothing: dict,
    pseudo_label: dict[str, Any],
    model_name: str,
    fold: int,
) -> tuple[pd.DataFrame, dict]:
    """Soft or hard targets for the test images the model is confident about, and where they come from.

    With ``pseudo_label.smooth``, the predictions are first neighbour-smoothed as chosen
    on the other folds' images (``leave_fold_out_smoothing``), never on this fold's labels.
    The sources name every labelled driver the labelling model saw, so that training
    can refuse labels from a model that saw its validation drivers.
    """
    config = parse_params(pseudo.PseudoLabelConfig, pseudo_label, "pseudo_label")
    probabilities = softmax(test_logits.loc[:, cv.LOGITS].to_numpy(np.float64), axis=1)
    if config.smooth:
        choice = leave_fold_out_smoothing[f"fold_{fold}"]
        if not test_neighbours["img"].equals(test_logits["img"]):
            raise ValueError(f"{model_name}: its test neighbours are of other images than its test predictions")
        probabilities = smooth(
            probabilities, test_neighbours, choice["neighbours"], choice["weight"], choice["weighting"]
        )
        logger.info(
            "Pseudo-labels of fold %d smoothed over %d %s neighbours at weight %.2f (chosen on folds %s)",
            fold, choice["neighbours"], choice["weighting"], choice["weight"], choice["chosen_on_folds"] or "none",
        )  # fmt: skip
    predictions = pd.DataFrame(probabilities, columns=cv.PROBABILITIES).assign(img=test_logits["img"].to_numpy())
    sources = pseudo.pseudo_label_sources([model_name], labelling_model["model_info"]["train_drivers"])
    return pseudo.make_pseudo_labels(predictions, config), sources


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


def compare_models(baseline_oof: pd.DataFrame, pseudo_oof: pd.DataFrame, submission: dict[str, Any]) -> pd.DataFrame:
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
    rows = [row for name, p in models.items() for row in _score_rows(name, baseline_oof, p, submission["clip"])]
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
