"""``python -m statefarm.runtime.mlflow_ui``: the MLflow UI on the project's runs, without the virtualenv on PATH."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from tests.conftest import copy_project


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _page(port: int) -> str | None:
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1, never through a proxy
    try:
        with direct.open(f"http://127.0.0.1:{port}/", timeout=2) as response:
            return response.read().decode()
    except OSError:
        return None


def _wait_for(condition, seconds: float):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.5)
    return None


def test_the_ui_starts_without_the_virtualenv_on_path_and_ends_with_its_command(tmp_path, monkeypatch):
    project = copy_project(tmp_path, monkeypatch)
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")}
    env["PATH"] = "/usr/bin:/bin"  # as for a user who did not activate .venv: no mlflow, no kedro on PATH
    command = subprocess.Popen(
        [sys.executable, "-m", "statefarm.runtime.mlflow_ui", "--port", str(port)],
        cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        page = _wait_for(lambda: _page(port) if command.poll() is None else "exited", 90)
        assert page not in (None, "exited"), command.stdout.read() if command.poll() is not None else "no page"
        assert "<title>MLflow</title>" in page
        assert (project / "mlflow.db").is_file()  # the project's store, from conf's mlflow.yml
    finally:
        command.send_signal(signal.SIGTERM)
        command.wait(timeout=30)
    assert _wait_for(lambda: _page(port) is None, 15), "the server outlived the command that started it"
