"""Figures and tables a person reads after a run: learning curves, confusion matrix, per-class scores."""

from __future__ import annotations

import json
import threading

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from scipy.special import log_softmax
from sklearn.metrics import confusion_matrix

from statefarm.data.layout import CLASS_NAMES
from statefarm.runtime.run_summary import best_epoch as kept_epoch

# matplotlib's text layout shares one parser between threads; under the ThreadRunner the folds'
# figures are laid out and saved at the same time, so each layout and save holds this lock.
DRAWING = threading.RLock()

CLASS_DESCRIPTIONS = (
    "safe driving", "texting - right", "phone - right", "texting - left", "phone - left",
    "radio", "drinking", "reaching behind", "hair and makeup", "talking to passenger",
)  # fmt: skip


def lay_out(figure: Figure) -> None:
    """``figure.tight_layout()``, holding ``DRAWING``."""
    with DRAWING:
        figure.tight_layout()


def _logits(valid_predictions: pd.DataFrame) -> np.ndarray:
    return valid_predictions.loc[:, [f"logit_{name}" for name in CLASS_NAMES]].to_numpy(np.float64)


def learning_curves_figure(history: pd.DataFrame, model: str = "", pseudo_labelled: bool = False) -> Figure:
    """Train and validation loss and accuracy per epoch, and the learning rate; the kept epoch marked.

    Args:
        history: One row per epoch (``engine.fit``'s history).
        model: Named in the title (``baseline.fold_0``).
        pseudo_labelled: The training loss includes the soft pseudo-label targets, which
            never reach zero; the panel says so.
    """
    figure = Figure(figsize=(15, 4))
    loss_ax, acc_ax, lr_ax = figure.subplots(1, 3)
    epochs = history["epoch"] + 1
    best_epoch, best_loss = kept_epoch(history), float(history["valid_loss"].min())
    train_label = "train (labelled + soft pseudo-labels)" if pseudo_labelled else "train"
    loss_ax.plot(epochs, history["train_loss"], marker="o", label=train_label)
    loss_ax.plot(epochs, history["valid_loss"], marker="o", label="valid (held-out drivers)")
    loss_ax.axhline(np.log(len(CLASS_NAMES)), color="grey", linestyle=":", label="chance")
    loss_ax.set(title="log loss", xlabel="epoch")
    acc_ax.plot(epochs, history["train_accuracy"], marker="o", label="train")
    acc_ax.plot(epochs, history["valid_accuracy"], marker="o", label="valid")
    acc_ax.set(title="accuracy", xlabel="epoch", ylim=(0, 1))
    lr_ax.plot(epochs, history["lr"], marker="o")
    lr_ax.set(title="learning rate (end of epoch)", xlabel="epoch", yscale="log")
    for ax in (loss_ax, acc_ax, lr_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.axvline(best_epoch, color="green", linestyle="--", alpha=0.6, label=f"kept: epoch {best_epoch}")
    loss_ax.legend(fontsize=8)
    acc_ax.legend(fontsize=8)
    figure.suptitle(f"{model or 'model'}: best validation log loss {best_loss:.4f} at epoch {best_epoch}")
    lay_out(figure)
    return figure


def confusion_matrix_figure(valid_predictions: pd.DataFrame, title: str = "validation drivers") -> Figure:
    """Row-normalized confusion matrix on the validation drivers, each cell with its share of the row and its
    image count; ``title`` names the model and its score."""
    predicted = _logits(valid_predictions).argmax(1)
    counts = confusion_matrix(valid_predictions["label"], predicted, labels=range(len(CLASS_NAMES)))
    matrix = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    figure = Figure(figsize=(8, 7))
    axes = figure.subplots()
    image = axes.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
    labels = [f"{name} {description}" for name, description in zip(CLASS_NAMES, CLASS_DESCRIPTIONS, strict=True)]
    axes.set_xticks(range(len(CLASS_NAMES)), CLASS_NAMES)
    axes.set_yticks(range(len(CLASS_NAMES)), labels)
    for (row, column), value in np.ndenumerate(matrix):
        if counts[row, column]:
            axes.text(
                column, row, f"{value:.2f}\n{counts[row, column]}", ha="center", va="center", fontsize=7,
                color="white" if value > 0.5 else "black",
            )  # fmt: skip
    accuracy = float((predicted == valid_predictions["label"].to_numpy()).mean())
    subtitle = f"accuracy {accuracy:.3f}; each cell: share of its row, images"
    axes.set(xlabel="predicted", ylabel="true", title=f"{title}\n{subtitle}")
    figure.colorbar(image)
    lay_out(figure)
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


def regularization_tuning_figure(table: pd.DataFrame, tuned: dict) -> Figure:
    """Each arm's out-of-fold gain over the reference recipe, with ``noise`` standard errors of its fold-by-fold
    gains as error bars: a bar whose error bar stays right of zero beat the reference beyond the noise.
    Kept arms are green; arms stopped early or failed are listed without a bar."""
    arms = table[table["arm"] != "reference"].reset_index(drop=True)
    noise = tuned.get("noise", 2.0)
    kept = set(tuned.get("chosen", {}))
    figure = Figure(figsize=(7, 0.4 * len(arms) + 1.6))
    ax = figure.subplots()
    scored = arms["status"] == "ok"
    colours = ["green" if arm in kept or (arm == "combined" and tuned.get("changes")) else "steelblue"
               for arm in arms["arm"]]  # fmt: skip
    ax.barh(arms.index[scored], arms.loc[scored, "gain"], xerr=noise * arms.loc[scored, "gain_std_error"].fillna(0),
            color=[c for c, ok in zip(colours, scored, strict=True) if ok], capsize=3)  # fmt: skip
    labels = [arm if ok else f"{arm} ({status})" for arm, ok, status in zip(arms["arm"], scored, arms["status"],
                                                                          strict=True)]  # fmt: skip
    ax.set_yticks(arms.index, labels, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(tuned.get("margin", 0.0), color="grey", linestyle="--", label="margin")
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set(xlabel="out-of-fold log-loss gain over the reference (right is better)")
    ax.legend(fontsize=8)
    figure.suptitle(
        f"Regularization tuned on every labelled image: reference {tuned['reference_oof_log_loss']:.4f} out of fold\n"
        f"error bars: {noise:g} standard errors of the fold-by-fold gains",
        fontsize=10,
    )
    lay_out(figure)
    return figure


def lr_sweep_figure(sweep: pd.DataFrame, suggestion: dict[str, float], configured_lr: float, model: str) -> Figure:
    """The learning-rate range test: each step's loss and the smoothed loss against the rate (log scale), with
    the suggested rate, the lowest smoothed loss and the rate the recipe trains at marked."""
    figure = Figure(figsize=(7, 4.2))
    ax = figure.subplots()
    ax.plot(sweep["lr"], sweep["loss"], color="lightgrey", linewidth=0.8, label="loss of each step")
    ax.plot(sweep["lr"], sweep["smoothed_loss"], color="steelblue", label="smoothed loss")
    ax.set_xscale("log")
    suggested, lowest = suggestion["suggested_lr"], suggestion["lowest_loss_lr"]
    marks = (
        (suggested, "green", "-", f"suggested {suggested:.1e}, a tenth of the lowest"),
        (lowest, "grey", ":", f"lowest smoothed loss at {lowest:.1e}"),
        (configured_lr, "darkorange", "--", f"optimizer.lr {configured_lr:.1e}"),
    )  # fmt: skip
    for rate, colour, style, label in marks:
        ax.axvline(rate, color=colour, linestyle=style, label=label)
    low, high = sweep["smoothed_loss"].min(), sweep["smoothed_loss"].iloc[: max(len(sweep) // 10, 1)].max()
    ax.set_ylim(low - 0.1 * (high - low + 1e-9), max(high, low) + 0.6 * (high - low + 1e-9))  # the blow-up cut off
    ax.set(xlabel="learning rate (log scale)", ylabel="training loss")
    ax.legend(fontsize=8)
    figure.suptitle(f"{model}: learning-rate range test, {len(sweep)} steps; start training low", fontsize=10)
    lay_out(figure)
    return figure


def augment_scan_figure(scan: pd.DataFrame, tuned: dict | None = None) -> Figure:
    """One panel per transform: validation log loss against its strength, on one shared scale.

    No augmentation is drawn across every panel (and the combination and the configured spec, when they ran);
    error bars are the spread over seeds when trials were repeated; the value kept for
    training (``tuned["chosen"]``) is circled; a trial stopped early by successive halving is a grey
    triangle at its loss when it stopped; a failed trial is a red cross.
    """
    plain = scan.loc[scan["transform"] == "none", "valid_loss"].iloc[0]
    chosen = (tuned or {}).get("chosen", {})
    transforms = [t for t in scan["transform"].unique() if t not in ("none", "combined", "configured")]
    columns = min(4, max(1, len(transforms)))
    rows = max(1, -(-len(transforms) // columns))
    figure = Figure(figsize=(4 * columns, 3.4 * rows))
    axes = figure.subplots(rows, columns, squeeze=False, sharey=True)
    combined = scan.loc[scan["transform"] == "combined", "valid_loss"]
    configured = scan.loc[scan["transform"] == "configured", "valid_loss"]
    for ax, transform in zip(axes.flat, transforms, strict=False):
        trials = scan[scan["transform"] == transform].reset_index(drop=True)
        errors = trials["valid_loss_std"].fillna(0) if trials["valid_loss_std"].notna().any() else None
        scored = trials["valid_loss"].where(trials["status"] == "ok")
        ax.errorbar(trials.index, scored, yerr=errors, marker="o", capsize=3, label=transform)
        stopped = trials.index[trials["status"] == "pruned"]  # its loss when it stopped, after fewer epochs
        ax.scatter(stopped, trials.loc[stopped, "valid_loss"], marker="v", color="grey",
                   label="stopped early" if len(stopped) else None)  # fmt: skip
        failed = trials.index[trials["status"] == "failed"]
        ax.scatter(failed, [plain] * len(failed), marker="x", color="red", label="failed" if len(failed) else None)
        ax.axhline(plain, color="grey", linestyle="--", label="no augmentation")
        if len(combined):
            ax.axhline(combined.iloc[0], color="green", linestyle=":", label="combined")
        if len(configured):
            ax.axhline(configured.iloc[0], color="darkorange", linestyle="-.", label="configured spec")
        if transform in chosen:
            kept = trials.index[trials["value"] == json.dumps(chosen[transform]["value"])]
            ax.scatter(kept, trials.loc[kept, "valid_loss"], s=160, facecolors="none", edgecolors="green",
                       linewidths=2, label="kept", zorder=3)  # fmt: skip
        ax.set_xticks(trials.index, [str(v)[:14] for v in trials["value"]], rotation=30, fontsize=7)
        ax.set(title=transform, xlabel=trials["argument"].iloc[0], ylabel="valid log loss")
    for ax in list(axes.flat)[len(transforms) :]:
        ax.axis("off")
    legend = {}  # one legend for every panel: the first may have no kept value or failure to show
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in transforms:
                legend.setdefault(label, handle)
    figure.legend(legend.values(), legend.keys(), loc="lower right", fontsize=8)
    figure.suptitle("Augmentation scan on the driver sample (lower is better)")
    lay_out(figure)
    return figure
