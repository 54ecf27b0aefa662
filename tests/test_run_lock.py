"""One run at a time on a dataset's data folders: a second one stops at once and names the first."""

import subprocess
import sys

import pytest

from statefarm.hooks import RunLockedError
from tests.conftest import copy_project, run_demo_data

HOLD_THE_LOCK = """
import json, os, sys, time
from filelock import FileLock
lock = FileLock(sys.argv[1], timeout=0)
lock.acquire()
holder = {"pid": os.getpid(), "command": "kedro run --env=demo", "started": "2026-12-03 14:00:00"}
open(sys.argv[1].replace(".lock", ".holder.json"), "w").write(json.dumps(holder))
print("held", flush=True)
time.sleep(120)
"""


def _lock_is_free(path) -> bool:
    probe = "import sys; from filelock import FileLock; FileLock(sys.argv[1], timeout=0).acquire()"
    return subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True).returncode == 0


def test_a_second_run_on_the_same_data_stops_and_names_the_first(tmp_path, monkeypatch):
    project = copy_project(tmp_path, monkeypatch)
    lock = project / "data" / ".demo.lock"
    lock.parent.mkdir()
    first = subprocess.Popen([sys.executable, "-c", HOLD_THE_LOCK, str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline().strip() == "held"
        with pytest.raises(RunLockedError, match=rf"^process {first.pid} \(`kedro run --env=demo`, started 2026"):
            run_demo_data(project)
        assert not (project / "data" / "01_raw").exists()  # nothing was written
    finally:
        first.kill()
        first.wait()

    run_demo_data(project)  # the first run is gone: the system freed its lock
    assert (project / "data" / "01_raw" / "demo" / "driver_imgs_list.csv").is_file()
    assert _lock_is_free(lock)  # and this run let go of it when it ended
