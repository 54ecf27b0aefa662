import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from statefarm.data.cache import open_image_cache, plan_image_cache, write_image_cache
from statefarm.data.images import decode_resized
from statefarm.datasets import ImageFolderDataset
from tests.conftest import corrupt_huffman_tables


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
    monkeypatch.setattr("statefarm.runtime.parallel.MIN_ITEMS_FOR_PROCESSES", 0)
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
    corrupt_huffman_tables(Path(plan.paths[5]))  # intact header and end marker, undecodable pixels
    decode = [row != 7 for row in range(len(plan.ids))]
    plan = _plan(raw_copy, num_workers=1, decode=decode)
    write_image_cache(plan, tmp_path / "cache")
    cache = open_image_cache(tmp_path / "cache")
    assert not cache.decoded[7] and not cache.images[7].any()
    assert not cache.decoded[5] and not cache.images[5].any()
    assert cache.decoded.sum() == len(plan.ids) - 2
    assert list(cache.failures) == [plan.ids[5]] and "broken data stream" in cache.failures[plan.ids[5]]


def test_missing_cache_says_how_to_build_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the data_prep pipeline first"):
        open_image_cache(tmp_path / "none")


def test_a_killed_build_leaves_no_debris_for_the_next(raw_copy, tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(finished.stdout)  # a process that has exited: its pid names nothing alive
    debris = tmp_path / f".cache.partial-{dead_pid}"
    debris.mkdir()
    (debris / "images.npy").write_bytes(b"\0" * 1000)
    write_image_cache(_plan(raw_copy, (12, 16), num_workers=1), tmp_path / "cache")
    assert not debris.exists() and not list(tmp_path.glob(".cache.*"))
    debris.mkdir()
    write_image_cache(_plan(raw_copy, (12, 16), num_workers=1), tmp_path / "cache")  # reused, and tidied
    assert not debris.exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers end with their parent on Linux")
def test_decode_workers_end_when_their_parent_is_killed(tmp_path):
    script = f"""
import os, time
from statefarm.runtime.parallel import parallel_map

def work(item):
    with open(os.path.join({str(tmp_path)!r}, f"worker-{{os.getpid()}}"), "w"):
        pass
    time.sleep(120)

if __name__ == "__main__":
    parallel_map(work, range(4), num_workers=2, min_items=1)
"""
    (tmp_path / "parent.py").write_text(script)
    parent = subprocess.Popen([sys.executable, str(tmp_path / "parent.py")])
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("worker-*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    workers = [int(path.name.split("-")[1]) for path in tmp_path.glob("worker-*")]
    assert len(workers) == 2
    parent.kill()  # as kill -9 would
    parent.wait()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if _alive(pid)], "decode workers outlived their parent"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie has exited; only its entry is left
        return stat.read().split(")")[-1].split()[0] != "Z"
