import numpy as np
import pytest
from PIL import Image

from statefarm.data.images import check_jpeg, decode_resized


@pytest.fixture
def photo(tmp_path):
    # Smooth, like a photo at this scale: pure noise would measure aliasing, not the decoder.
    yy, xx = np.mgrid[0:96, 0:128] / 16.0
    channels = [np.sin(yy + phase) * np.cos(xx * 0.7 + phase) for phase in (0.0, 1.0, 2.0)]
    pixels = (127.5 + 120 * np.stack(channels, axis=-1)).astype(np.uint8)
    path = tmp_path / "photo.jpg"
    Image.fromarray(pixels).save(path, quality=95)
    return path


def test_check_accepts_a_complete_jpeg(photo):
    assert check_jpeg(str(photo)) == (128, 96, None)


def test_check_reports_a_truncated_jpeg(photo, tmp_path):
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(photo.read_bytes()[: photo.stat().st_size // 2])
    assert check_jpeg(str(cut)).problem == "truncated JPEG (no end-of-image marker)"


@pytest.mark.parametrize(
    ("content", "problem"),
    [(b"", "empty file"), (b"this is not an image", "not an image")],
)
def test_check_reports_unreadable_files(tmp_path, content, problem):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    assert check_jpeg(str(path)).problem == problem


def _with_scan_data(photo, tmp_path, fill: int):
    """``photo`` with every byte of its compressed pixel data replaced by ``fill``, markers intact."""
    data = photo.read_bytes()
    start_of_scan = data.index(b"\xff\xda")
    start = start_of_scan + 2 + int.from_bytes(data[start_of_scan + 2 : start_of_scan + 4], "big")
    end = data.rindex(b"\xff\xd9")
    path = tmp_path / f"scan_{fill:02x}.jpg"
    path.write_bytes(data[:start] + bytes([fill]) * (end - start) + data[end:])
    return path


@pytest.mark.parametrize("fill", [0x00, 0xFF])
def test_check_rejects_scan_data_the_decoder_tolerates(photo, tmp_path, fill):
    garbage = _with_scan_data(photo, tmp_path, fill)
    Image.open(garbage).convert("RGB")  # the decoder itself accepts it
    assert check_jpeg(str(garbage)).problem == (
        f"degenerate JPEG (100% of its pixel data is byte 0x{fill:02X}: flat or garbage)"
    )


def test_check_rejects_a_flat_image(tmp_path):
    path = tmp_path / "flat.jpg"
    Image.new("RGB", (128, 96), (90, 60, 30)).save(path, quality=95)
    assert check_jpeg(str(path)).problem.startswith("degenerate JPEG")


def test_check_reports_a_png_named_jpg(tmp_path):
    path = tmp_path / "png.jpg"
    Image.new("RGB", (8, 6)).save(path, format="PNG")
    assert check_jpeg(str(path)) == (8, 6, "not a JPEG (PNG)")


def test_check_reports_a_missing_file(tmp_path):
    assert check_jpeg(str(tmp_path / "nope.jpg")).problem == "missing file"


def test_decode_resizes_to_height_width(photo):
    image = decode_resized(str(photo), (30, 40))
    assert image.shape == (30, 40, 3) and image.dtype == np.uint8


def test_decode_at_source_size_equals_a_full_decode(photo):
    expected = np.asarray(Image.open(photo).convert("RGB"))
    np.testing.assert_array_equal(decode_resized(str(photo), (96, 128)), expected)


def test_reduced_decode_stays_close_to_full_decode_and_resize(photo):
    full = Image.open(photo).convert("RGB").resize((32, 24), Image.Resampling.BILINEAR)
    reduced = decode_resized(str(photo), (24, 32)).astype(int)
    assert np.abs(reduced - np.asarray(full, dtype=int)).mean() < 2
