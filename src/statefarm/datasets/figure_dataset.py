"""A matplotlib figure saved as a PNG, never while another is being drawn."""

from __future__ import annotations

from kedro_datasets.matplotlib import MatplotlibDataset
from matplotlib.figure import Figure

from statefarm.evaluation.reports import DRAWING


class FigureDataset(MatplotlibDataset):
    """``MatplotlibDataset`` whose saves hold ``reports.DRAWING``.

    matplotlib's text layout is not thread-safe, and under the ThreadRunner the folds'
    figures are saved at the same time.
    """

    def save(self, data: Figure) -> None:
        with DRAWING:
            super().save(data)
