import subprocess
import sys

import numpy as np
import pandas as pd
from PIL import Image

from statefarm.data.layout import CLASS_NAMES
from statefarm.evaluation import reports


def test_importing_the_pipelines_leaves_a_notebooks_matplotlib_backend_alone():
    script = (
        "import matplotlib; matplotlib.use('svg'); "
        "import statefarm.evaluation.reports, statefarm.pipeline_registry; "
        "print(matplotlib.get_backend())"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.split()[-1] == "svg"


def test_figures_are_drawn_without_pyplot(tmp_path):
    history = pd.DataFrame(
        {"epoch": [0, 1], "train_loss": [2.0, 1.0], "valid_loss": [2.1, 1.4], "train_accuracy": [0.2, 0.6],
         "valid_accuracy": [0.2, 0.5], "lr": [1e-4, 1e-3]}
    )  # fmt: skip
    rng = np.random.default_rng(0)
    predictions = pd.DataFrame(rng.normal(size=(30, 10)), columns=[f"logit_{c}" for c in CLASS_NAMES])
    predictions["label"] = np.arange(30) % 10
    for name, figure in (
        ("curves", reports.learning_curves_figure(history)),
        ("confusion", reports.confusion_matrix_figure(predictions)),
    ):
        figure.savefig(tmp_path / f"{name}.png")
        with Image.open(tmp_path / f"{name}.png") as image:
            assert image.size[0] > 500 and image.getextrema()[0][0] < 100  # drawn, not blank
    assert len(reports.learning_curves_figure(history).axes) == 3
    cells = [text.get_text().split("\n") for text in reports.confusion_matrix_figure(predictions).axes[0].texts]
    assert sum(int(count) for _, count in cells) == len(predictions)  # every image counted once, beside its share


def test_plots_name_the_model_and_mark_what_was_kept():
    history = pd.DataFrame(
        {"epoch": [0, 1, 2], "train_loss": [2.0, 1.0, 0.8], "valid_loss": [2.1, 1.4, 1.5],
         "train_accuracy": [0.2, 0.6, 0.7], "valid_accuracy": [0.2, 0.5, 0.45], "lr": [1e-4, 1e-3, 1e-4]}
    )  # fmt: skip
    curves = reports.learning_curves_figure(history, "pseudo.fold_1", pseudo_labelled=True)
    assert curves._suptitle.get_text() == "pseudo.fold_1: best validation log loss 1.4000 at epoch 2"
    loss_ax = curves.axes[0]
    assert "kept: epoch 2" in loss_ax.get_legend_handles_labels()[1]
    assert "train (labelled + soft pseudo-labels)" in loss_ax.get_legend_handles_labels()[1]
    assert all(tick == int(tick) for tick in loss_ax.get_xticks())  # whole epochs only

    scan = pd.DataFrame(
        {"transform": ["none", "shift", "shift", "blur", "blur", "combined"],
         "argument": ["", "translate_percent", "translate_percent", "blur_limit", "blur_limit", ""],
         "value": ["", "[-0.1, 0.1]", "[-0.2, 0.2]", "3", "5", ""],
         "valid_loss": [1.0, 0.9, 1.1, 1.2, 1.3, 0.85], "valid_loss_std": [0.02, 0.03, 0.01, 0.02, 0.05, 0.02],
         "status": ["ok"] * 6}
    )  # fmt: skip
    figure = reports.augment_scan_figure(scan, {"chosen": {"shift": {"value": [-0.1, 0.1], "valid_loss": 0.9}}})
    shift, blur = figure.axes[:2]
    assert shift.get_ylim() == blur.get_ylim() and shift.get_xlabel() == "translate_percent"
    assert [text.get_text() for text in figure.legends[0].get_texts()] == ["no augmentation", "combined", "kept"]
    kept = [collection for collection in shift.collections if collection.get_label() == "kept"]
    assert kept and kept[0].get_offsets().tolist() == [[0.0, 0.9]]  # the circled value is the chosen one
