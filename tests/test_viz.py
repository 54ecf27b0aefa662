"""Kedro-Viz draws the chain an environment runs: its folds, each one collapsible pipeline."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import copy_project


@pytest.mark.slow
def test_kedro_viz_build_draws_the_folds_of_the_environment_as_its_readme_command_says(tmp_path, monkeypatch):
    project = copy_project(tmp_path / "project", monkeypatch)
    env = {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")} | {"KEDRO_ENV": "demo"}
    result = subprocess.run(
        [sys.executable, "-m", "kedro", "viz", "build", "--include-hooks"],
        cwd=project, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    chain = json.loads((project / "build" / "api" / "pipelines" / "pseudo_label").read_text())
    folds = sorted(name for name in chain["modular_pipelines"] if name.startswith(("baseline.fold_", "pseudo.fold_")))
    assert folds == [f"{kind}.fold_{k}" for kind in ("baseline", "pseudo") for k in range(3)]  # conf/demo's 3, not 5
    for kind in ("baseline", "pseudo"):  # each fold one node inside its kind's, collapsed until opened
        children = chain["modular_pipelines"][kind]["children"]
        inside = sorted(child["id"] for child in children if child["type"] == "modularPipeline")
        assert inside == [f"{kind}.fold_{k}" for k in range(3)]
