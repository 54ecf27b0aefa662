"""Nodes of ``data_prep``: validate the competition files, index them, cache the pixels."""

from __future__ import annotations

from functools import partial

import pandas as pd
from pydantic import Field

from statefarm.config import Params
from statefarm.data import cache, layout
from statefarm.data.images import ImageCheck, check_jpeg
from statefarm.runtime.parallel import parallel_map


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
    """Index every train and test image and report the ones whose file cannot be used."""
    return layout.build_image_index(
        image_files,
        driver_imgs_list,
        sample_submission,
        check_images=partial(_check_images, num_workers=num_workers),
    )


def plan_image_cache(
    image_index: pd.DataFrame, image_cache: ImageCacheConfig, num_workers: int | None
) -> cache.ImageCachePlan:
    """Describe the cache of every indexed image; the catalog's dataset decodes it."""
    return cache.plan_image_cache(
        ids=image_index["img"].tolist(),
        paths=image_index["path"].fillna("").tolist(),
        file_sizes=image_index["file_size"].fillna(-1).tolist(),
        mtimes_ns=image_index["mtime_ns"].fillna(-1).tolist(),
        decode=image_index["valid"].tolist(),
        image_size=image_cache.image_size,
        num_workers=num_workers,
    )


def reject_undecodable(
    checked_images: pd.DataFrame, file_rejections: pd.DataFrame, image_cache: cache.ImageCache
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The image index as the cache saw it: an image the decoder failed on is rejected with its reason.

    A JPEG can pass the file checks (header, end marker) and still fail to decode. Such
    an image is marked ``valid=False``, so it is never trained on and a test image gets
    the class prior, and it joins ``rejected_images``. Every row records the cache it
    was checked against, so later stages can refuse a cache from another build.
    """
    failed = checked_images["img"].map(image_cache.failures)
    undecoded = checked_images["valid"] & failed.notna()
    image_index = checked_images.assign(
        valid=checked_images["valid"] & ~undecoded, cache_fingerprint=image_cache.fingerprint
    )
    rejected = checked_images.loc[undecoded, ["img", "split", "path"]].assign(
        reason="could not be decoded: " + failed[undecoded].astype(str)
    )
    return image_index, pd.concat([file_rejections, rejected], ignore_index=True)
