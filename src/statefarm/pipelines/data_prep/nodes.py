"""Nodes of ``data_prep``: validate the competition files, index them, cache the pixels."""

from __future__ import annotations

from functools import partial
from typing import Any

import pandas as pd
from pydantic import Field

from statefarm import cache, layout
from statefarm.config import Params, parse_params
from statefarm.images import ImageCheck, check_jpeg
from statefarm.parallel import parallel_map


class ImageCacheConfig(Params):
    """Size of the cached images: ``(height, width)``, stretched; keep 3:4 to keep the aspect."""

    image_size: tuple[int, int] = Field(..., description="(height, width) in pixels")


def _check_images(paths: list[str], num_workers: int | None) -> list[ImageCheck]:
    return parallel_map(check_jpeg, paths, num_workers)


def index_images(
    image_files: pd.DataFrame,
    driver_imgs_list: pd.DataFrame,
    sample_submission: pd.DataFrame,
    num_workers: int | None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Index every train and test image and report the ones that cannot be used."""
    return layout.build_image_index(
        image_files,
        driver_imgs_list,
        sample_submission,
        check_images=partial(_check_images, num_workers=num_workers),
    )


def plan_image_cache(
    image_index: pd.DataFrame, image_cache: dict[str, Any], num_workers: int | None
) -> cache.ImageCachePlan:
    """Describe the cache of every indexed image; the catalog's dataset decodes it."""
    config = parse_params(ImageCacheConfig, image_cache, "image_cache")
    return cache.plan_image_cache(
        ids=image_index["img"].tolist(),
        paths=image_index["path"].fillna("").tolist(),
        file_sizes=image_index["file_size"].fillna(-1).tolist(),
        mtimes_ns=image_index["mtime_ns"].fillna(-1).tolist(),
        decode=image_index["valid"].tolist(),
        image_size=config.image_size,
        num_workers=num_workers,
    )
