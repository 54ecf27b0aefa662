"""Read one competition image: check its header and bytes, or decode it at a target size."""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np
from PIL import Image, UnidentifiedImageError

_JPEG_END_OF_IMAGE = b"\xff\xd9"
_JPEG_START_OF_SCAN = 0xDA
# Encoders may pad a few bytes after the end-of-image marker; look for it in the tail.
_TAIL_BYTES = 64
# Entropy-coded pixel data is close to uniform bytes: in the real State Farm frames no byte
# value exceeds 1.6% of it. A flat image encodes to one code repeated (about 25% one byte);
# scan data zeroed or filled with 0xFF, which the decoder turns into grey without an error, is 100%.
DEGENERATE_BYTE_SHARE = 0.2


class ImageCheck(NamedTuple):
    """What a header check found: the size, and why the file is unusable (or ``None``)."""

    width: int
    height: int
    problem: str | None


def check_jpeg(path: str) -> ImageCheck:
    """Check that ``path`` is a complete JPEG without decoding its pixels.

    Reads the header (format and size) and the bytes: a JPEG that was cut short, the
    usual damage of an interrupted download or unzip, has no end-of-image marker, and
    compressed pixel data made of one repeated byte decodes to a flat or repeating
    pattern that the decoder accepts without a word (``DEGENERATE_BYTE_SHARE``).

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
        data = file.read()
    if _JPEG_END_OF_IMAGE not in data[-_TAIL_BYTES:]:
        return ImageCheck(width, height, "truncated JPEG (no end-of-image marker)")
    share, value = _most_common_scan_byte(data)
    if share > DEGENERATE_BYTE_SHARE:
        return ImageCheck(
            width, height, f"degenerate JPEG ({share:.0%} of its pixel data is byte 0x{value:02X}: flat or garbage)"
        )
    return ImageCheck(width, height, None)


def _most_common_scan_byte(data: bytes) -> tuple[float, int]:
    """The share of the commonest byte in the compressed pixel data (from the first scan on), and that byte.

    Walks the header's segments to the first start-of-scan marker rather than searching for
    it, since an EXIF thumbnail in the header is a JPEG with markers of its own.
    """
    offset = 2
    while offset + 4 <= len(data) and data[offset] == 0xFF:
        marker, length = data[offset + 1], int.from_bytes(data[offset + 2 : offset + 4], "big")
        offset += 2 + length
        if marker == _JPEG_START_OF_SCAN:
            break
    scan = np.frombuffer(data, np.uint8, offset=min(offset, len(data)))
    if scan.size == 0:
        return 0.0, 0
    counts = np.bincount(scan, minlength=256)
    return float(counts.max() / scan.size), int(counts.argmax())


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
