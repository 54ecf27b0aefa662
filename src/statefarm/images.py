"""Read one competition image: check its header and bytes, or decode it at a target size."""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np
from PIL import Image, UnidentifiedImageError

_JPEG_END_OF_IMAGE = b"\xff\xd9"
# Encoders may pad a few bytes after the end-of-image marker; look for it in the tail.
_TAIL_BYTES = 64


class ImageCheck(NamedTuple):
    """What a header check found: the size, and why the file is unusable (or ``None``)."""

    width: int
    height: int
    problem: str | None


def check_jpeg(path: str) -> ImageCheck:
    """Check that ``path`` is a complete JPEG without decoding its pixels.

    Reads the header (format and size) and the last bytes: a JPEG that was cut
    short, the usual damage of an interrupted download or unzip, has no
    end-of-image marker.

    Args:
        path: The image file.

    Returns:
        The image's width and height (0 when unreadable) and the problem, if any.
    """
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        return ImageCheck(0, 0, "missing file")
    if size == 0:
        return ImageCheck(0, 0, "empty file")
    try:
        with Image.open(path) as image:
            width, height = image.size
            image_format = image.format
    except UnidentifiedImageError:
        return ImageCheck(0, 0, "not an image")
    except OSError as error:
        if "truncated" in str(error).lower():
            return ImageCheck(0, 0, "truncated JPEG (cut short inside its header)")
        return ImageCheck(0, 0, f"unreadable image ({error})")
    if image_format != "JPEG":
        return ImageCheck(width, height, f"not a JPEG ({image_format})")
    with open(path, "rb") as file:
        file.seek(max(0, size - _TAIL_BYTES))
        if _JPEG_END_OF_IMAGE not in file.read():
            return ImageCheck(width, height, "truncated JPEG (no end-of-image marker)")
    return ImageCheck(width, height, None)


def decode_resized(path: str, image_size: tuple[int, int]) -> np.ndarray:
    """Decode an image to RGB and resize it to ``image_size``.

    JPEG draft mode lets libjpeg decode straight to the smallest power-of-two
    reduction that still covers the target (a 640x480 photo decodes at 320x240
    for a 224x224 target), which is several times faster than a full decode;
    a bilinear, antialiased resize then gives the exact size.

    Args:
        path: The image file.
        image_size: Target ``(height, width)``; the image is stretched to it, so pick
            the source's aspect ratio (e.g. 240x320 for 480x640) to keep it.

    Returns:
        A ``(height, width, 3)`` uint8 array.
    """
    height, width = image_size
    with Image.open(path) as image:
        image.draft("RGB", (width, height))
        rgb = image.convert("RGB")
    if rgb.size != (width, height):
        rgb = rgb.resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(rgb, dtype=np.uint8)
