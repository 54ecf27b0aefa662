"""Figures and tables a person reads after a run: learning curves, confusion matrix, per-class scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy.special import log_softmax
from sklearn.metrics import confusion_matrix

from statefarm.layout import CLASS_NAMES

CLASS_DESCRIPTIONS = (
    "safe driving", "texting - right", "phone - right", "texting - left", "phone - left",
    "radio", "drinking", "reaching behind", "hair and makeup", "talking to passenger",
)  # fmt: skip


def _logits(valid_predictions: pd.DataFrame) -> np.ndarray:
    return valid_predictions.loc[:, [f"logit_{name}" for name in CLASS_NAMES]].to_numpy(np.float64)


def learning_curves_figure(history: pd.DataFrame) -> Figure:
    """Train and validation loss and accuracy per epoch, and the learning rate."""
    figure = Figure(figsize=(15, 4))
    loss_ax, acc_ax, lr_ax = figure.subplots(1, 3)
    epochs = history["epoch"] + 1
    loss_ax.plot(epochs, history["train_loss"], marker="o", label="train")
    loss_ax.plot(epochs, history["valid_loss"], marker="o", label="valid (held-out drivers)")
    loss_ax.axhline(np.log(len(CLASS_NAMES)), color="grey", linestyle=":", label="chance")
    loss_ax.set(title="log loss", xlabel="epoch")
    loss_ax.legend()
    acc_ax.plot(epochs, history["train_accuracy"], marker="o", label="train")
    acc_ax.plot(epochs, history["valid_accuracy"], marker="o", label="valid")
    acc_ax.set(title="accuracy", xlabel="epoch", ylim=(0, 1))
    acc_ax.legend()
    lr_ax.plot(epochs, history["lr"], marker="o")
    lr_ax.set(title="learning rate (end of epoch)", xlabel="epoch", yscale="log")
    figure.tight_layout()
    return figure


def confusion_matrix_figure(valid_predictions: pd.DataFrame) -> Figure:
    """Row-normalized confusion matrix on the validation drivers."""
    predicted = _logits(valid_predictions).argmax(1)
    matrix = confusion_matrix(valid_predictions["label"], predicted, labels=range(len(CLASS_NAMES)), normalize="true")
    figure = Figure(figsize=(8, 7))
    axes = figure.subplots()
    image = axes.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
    labels = [f"{name} {description}" for name, description in zip(CLASS_NAMES, CLASS_DESCRIPTIONS, strict=True)]
    axes.set_xticks(range(len(CLASS_NAMES)), CLASS_NAMES)
    axes.set_yticks(range(len(CLASS_NAMES)), labels)
    for (row, column), value in np.ndenumerate(matrix):
        if value >= 0.01:
            axes.text(column, row, f"{value:.2f}", ha="center", va="center", color="white" if value > 0.5 else "black")
    axes.set(xlabel="predicted", ylabel="true", title="validation drivers, row-normalized")
    figure.colorbar(image)
    figure.tight_layout()
    return figure


def per_class_report(valid_predictions: pd.DataFrame) -> pd.DataFrame:
    """Per class: images, accuracy (recall), precision and mean log loss on the validation drivers."""
    logits = _logits(valid_predictions)
    labels = valid_predictions["label"].to_numpy()
    predicted = logits.argmax(1)
    nll = -log_softmax(logits, axis=1)[np.arange(len(labels)), labels]
    rows = []
    for label, name in enumerate(CLASS_NAMES):
        is_class, said_class = labels == label, predicted == label
        rows.append(
            {
                "class": name,
                "description": CLASS_DESCRIPTIONS[label],
                "images": int(is_class.sum()),
                "recall": float((predicted[is_class] == label).mean()) if is_class.any() else np.nan,
                "precision": float((labels[said_class] == label).mean()) if said_class.any() else np.nan,
                "log_loss": float(nll[is_class].mean()) if is_class.any() else np.nan,
            }
        )
    return pd.DataFrame(rows)


def augment_scan_figure(scan: pd.DataFrame) -> Figure:
    """One panel per transform: validation log loss against strength, the baseline drawn across."""
    baseline = scan.loc[scan["transform"] == "none", "valid_loss"].iloc[0]
    transforms = [t for t in scan["transform"].unique() if t not in ("none", "combined")]
    columns = min(4, max(1, len(transforms)))
    rows = max(1, -(-len(transforms) // columns))
    figure = Figure(figsize=(4 * columns, 3.2 * rows))
    axes = figure.subplots(rows, columns, squeeze=False)
    for ax, transform in zip(axes.flat, transforms, strict=False):
        trials = scan[scan["transform"] == transform]
        ax.plot(range(len(trials)), trials["valid_loss"], marker="o", label=transform)
        failed = trials["status"] != "ok"
        ax.scatter([i for i, bad in enumerate(failed) if bad], [baseline] * int(failed.sum()), marker="x", color="red")
        ax.axhline(baseline, color="grey", linestyle="--", label="no augmentation")
        if "combined" in set(scan["transform"]):
            combined = scan.loc[scan["transform"] == "combined", "valid_loss"].iloc[0]
            ax.axhline(combined, color="green", linestyle=":", label="combined")
        ax.set_xticks(range(len(trials)), [str(v)[:12] for v in trials["value"]], rotation=30, fontsize=7)
        ax.set(title=f"{transform} ({trials['argument'].iloc[0]})", ylabel="valid log loss")
    for ax in list(axes.flat)[len(transforms) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    figure.tight_layout()
    return figure
