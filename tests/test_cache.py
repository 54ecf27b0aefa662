import numpy as np
import pytest

from statefarm.cache import open_image_cache, plan_image_cache, write_image_cache
from statefarm.datasets import ImageFolderDataset
from statefarm.images import decode_resized


def _plan(root, image_size=(24, 32), num_workers=2, decode=None):
    files = ImageFolderDataset(str(root / "imgs")).load()
    files = files[files["relpath"].str.endswith(".jpg")].reset_index(drop=True)
    return plan_image_cache(
        ids=files["relpath"].tolist(),
        paths=files["path"].tolist(),
        file_sizes=files["file_size"].tolist(),
        mtimes_ns=files["mtime_ns"].tolist(),
        decode=[True] * len(files) if decode is None else decode,
        image_size=image_size,
        num_workers=num_workers,
    )


def test_cache_round_trips_every_pixel(raw_dataset, tmp_path, monkeypatch):
    # The tiny dataset is below the size where decoding moves to worker processes: force it.
    monkeypatch.setattr("statefarm.parallel.MIN_ITEMS_FOR_PROCESSES", 0)
    plan = _plan(raw_dataset)

    assert write_image_cache(plan, tmp_path / "cache") is True

    cache = open_image_cache(tmp_path / "cache")
    assert cache.images.shape == (len(plan.ids), 24, 32, 3) and cache.images.dtype == np.uint8
    assert isinstance(cache.images, np.memmap)
    assert cache.decoded.all()
    for name in (plan.ids[0], plan.ids[len(plan.ids) // 2], plan.ids[-1]):
        path = plan.paths[plan.ids.index(name)]
        np.testing.assert_array_equal(cache.images[cache.rows[name]], decode_resized(path, (24, 32)))
    np.testing.assert_array_equal(cache.rows_of([plan.ids[3], plan.ids[1]]), [3, 1])
    with pytest.raises(KeyError, match="'img_nope.jpg' is not in the image cache"):
        cache.rows_of(["img_nope.jpg"])


def test_same_inputs_reuse_the_cache(raw_dataset, tmp_path):
    plan = _plan(raw_dataset, num_workers=1)
    write_image_cache(plan, tmp_path / "cache")
    images = tmp_path / "cache" / "images.npy"
    built_at = images.stat().st_mtime_ns

    assert write_image_cache(_plan(raw_dataset, num_workers=2), tmp_path / "cache") is False
    assert images.stat().st_mtime_ns == built_at


def test_changed_size_or_file_rebuilds_the_cache(raw_copy, tmp_path):
    write_image_cache(_plan(raw_copy, num_workers=1), tmp_path / "cache")
    assert write_image_cache(_plan(raw_copy, (12, 16), num_workers=1), tmp_path / "cache") is True
    assert open_image_cache(tmp_path / "cache").images.shape[1:] == (12, 16, 3)

    changed = next((raw_copy / "imgs" / "test").glob("*.jpg"))
    changed.write_bytes(next((raw_copy / "imgs" / "train" / "c0").glob("*.jpg")).read_bytes())
    assert write_image_cache(_plan(raw_copy, (12, 16), num_workers=1), tmp_path / "cache") is True
    assert not list(tmp_path.glob(".cache.*")), "staging folders must be cleaned up"


def test_undecodable_and_skipped_images_are_flagged_as_zero_rows(raw_copy, tmp_path):
    plan = _plan(raw_copy, num_workers=1)
    broken = plan.paths[5]
    with open(broken, "r+b") as file:  # valid header, garbage where the pixels were
        file.seek(700)
        file.write(b"\x00" * 200 + b"\xff\xd0" * 50)
    decode = [row != 7 for row in range(len(plan.ids))]
    plan = _plan(raw_copy, num_workers=1, decode=decode)
    write_image_cache(plan, tmp_path / "cache")
    cache = open_image_cache(tmp_path / "cache")
    assert not cache.decoded[7] and not cache.images[7].any()
    assert cache.decoded.sum() >= len(plan.ids) - 2


def test_missing_cache_says_how_to_build_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the data_prep pipeline first"):
        open_image_cache(tmp_path / "none")
