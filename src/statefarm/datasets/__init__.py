"""Kedro datasets for the competition's image folder and the decoded image cache."""

from statefarm.datasets.image_cache_dataset import ImageCacheDataset
from statefarm.datasets.image_folder_dataset import ImageFolderDataset

__all__ = ["ImageCacheDataset", "ImageFolderDataset"]
