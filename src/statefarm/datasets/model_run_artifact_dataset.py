"""``ModelRunArtifactDataset``: a model's file, saved and logged to that model's own MLflow child run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset

from statefarm.runtime import tracking


class ModelRunArtifactDataset(AbstractDataset[Any, Any]):
    """Any file dataset, whose saved file is also an artifact of the child run of ``model`` in MLflow.

    A trained model is a child run of the ``kedro run``'s run (``training.train_classifier``
    opens it, tagged ``model: <name>``) with its parameters and per-epoch metrics; this puts
    its kept weights, learning curves and reports beside them, so that the child run is the
    whole record of its model. kedro-mlflow's ``MlflowArtifactDataset`` logs to the active
    run only, which is the parent once the training node has returned. Where the run has no
    child of that name (a model kept by ``--only-missing-outputs``, a kind's out-of-fold
    confusion matrix), the file goes to the active run under ``<model>/``, as before.

    Example catalog entry::

        "{namespace}.learning_curves":
          type: statefarm.datasets.ModelRunArtifactDataset
          model: "{namespace}"
          dataset:
            type: statefarm.datasets.FigureDataset
            filepath: data/08_reporting/demo/{namespace}/learning_curves.png
    """

    def __init__(self, dataset: dict[str, Any], model: str, metadata: dict[str, Any] | None = None) -> None:
        if "filepath" not in dataset:
            raise ValueError(f"ModelRunArtifactDataset for {model!r} wraps a dataset without a filepath: {dataset}")
        self._filepath = Path(dataset["filepath"])
        self._dataset = AbstractDataset.from_config(model, dataset)
        self._model = model
        self.metadata = metadata

    def load(self) -> Any:
        return self._dataset.load()

    def save(self, data: Any) -> None:
        self._dataset.save(data)
        tracking.log_model_artifact(self._model, self._filepath)

    def _exists(self) -> bool:
        return self._dataset.exists()

    def _describe(self) -> dict[str, Any]:
        return {"model": self._model, "filepath": str(self._filepath)}
