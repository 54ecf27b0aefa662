"""Kedro datasets: the image folder, the image cache, checkpoints, submissions, figures, optional CSV and YAML,
and a model's files logged to its own MLflow run."""

from statefarm.datasets.checkpoint_datasets import CheckpointStoreDataset, TorchCheckpointDataset
from statefarm.datasets.figure_dataset import FigureDataset
from statefarm.datasets.image_cache_dataset import ImageCacheDataset
from statefarm.datasets.image_folder_dataset import ImageFolderDataset
from statefarm.datasets.model_run_artifact_dataset import ModelRunArtifactDataset
from statefarm.datasets.optional_csv_dataset import OptionalCSVDataset
from statefarm.datasets.optional_yaml_dataset import OptionalYAMLDataset
from statefarm.datasets.submission_dataset import SubmissionDataset

__all__ = [
    "CheckpointStoreDataset",
    "FigureDataset",
    "ImageCacheDataset",
    "ImageFolderDataset",
    "ModelRunArtifactDataset",
    "OptionalCSVDataset",
    "OptionalYAMLDataset",
    "SubmissionDataset",
    "TorchCheckpointDataset",
]
