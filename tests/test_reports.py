import subprocess
import sys

import numpy as np
import pandas as pd
from PIL import Image

from statefarm import reports
from statefarm.layout import CLASS_NAMES


def test_importing_the_pipelines_leaves_a_notebooks_matplotlib_backend_alone():
    script = (
        "import matplotlib; matplotlib.use('svg'); "
        "import statefarm.reports, statefarm.pipeline_registry; "
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
