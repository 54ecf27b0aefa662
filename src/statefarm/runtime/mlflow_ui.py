"""Open the MLflow UI on this project's runs: ``python -m statefarm.runtime.mlflow_ui [--env ENV] [--port PORT]``.

``kedro mlflow ui`` starts ``mlflow`` from ``PATH``, so ``.venv/bin/kedro mlflow ui`` fails
unless the virtual environment is activated, and when it is stopped with SIGTERM the server
lives on. This starts the ``mlflow`` installed beside this Python, on the tracking URI and
host and port of the environment's ``mlflow.yml``, and ends the server (and its workers)
with it, however it is stopped.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from statefarm.hooks import exit_on_sigterm

logger = logging.getLogger(__name__)


def mlflow_executable() -> str:
    """The ``mlflow`` script of this Python's environment, else the one on ``PATH``."""
    found = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or shutil.which("mlflow")
    if found is None:
        raise SystemExit("mlflow is not installed in this environment: run `make install` first")
    return found


def ui_command(project: Path, env: str | None, host: str | None, port: str | None) -> list[str] | str:
    """``mlflow ui`` with the environment's settings, or the tracking server's URL when runs live on one."""
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env=env) as session:
        settings = session.load_context().mlflow  # kedro-mlflow's validated mlflow.yml
    uri = settings.server.mlflow_tracking_uri
    if uri.startswith(("http://", "https://")):
        return uri
    host, port = host or settings.ui.host, str(port or settings.ui.port)
    return [mlflow_executable(), "ui", "--backend-store-uri", uri, "--host", host, "--port", port]


def _end_group(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m statefarm.runtime.mlflow_ui", description=__doc__.splitlines()[0])
    parser.add_argument("--env", "-e", default=None, help="Kedro environment whose mlflow.yml to read")
    parser.add_argument("--host", default=None, help="default: mlflow.yml's ui.host (127.0.0.1)")
    parser.add_argument("--port", default=None, help="default: mlflow.yml's ui.port (5000)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    command = ui_command(Path.cwd(), args.env, args.host, args.port)
    if isinstance(command, str):
        logger.info("Runs are tracked on a server: open %s", command)
        return 0
    # Its own process group: the server's workers end with it, whatever stops this process.
    process = subprocess.Popen(command, start_new_session=True)
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    try:
        return process.wait()
    except KeyboardInterrupt:
        return 130
    finally:
        _end_group(process)


if __name__ == "__main__":
    sys.exit(main())
