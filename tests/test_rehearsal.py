"""The full-size rehearsal script runs every stage on a small generated shape and reports each."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from statefarm.data.cache import open_image_cache

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "rehearse_full_size.py"
pytestmark = pytest.mark.slow


def test_rehearsal_runs_every_stage_at_conf_base_sizes_and_writes_a_full_submission(tmp_path):
    workdir = tmp_path / "rehearsal"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--scale", "0.002", "--workdir", str(workdir), "--keep"],
        capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip
    table = result.stdout
    assert "260 labelled + 600 test JPEGs at 640x480, cached at [240, 320]" in table
    for stage in ("data_prep", "sampling", "predict", "neighbours", "submission"):
        assert any(line.startswith(stage) for line in table.splitlines()), table

    cache = open_image_cache(workdir / "work" / "image_cache")
    assert cache.images.shape == (860, 240, 320, 3)
    submission = pd.read_csv(workdir / "work" / "submission.csv")
    expected = pd.read_csv(workdir / "raw" / "sample_submission.csv")["img"]
    assert submission["img"].tolist() == expected.tolist()
    neighbours = pd.read_parquet(workdir / "work" / "neighbours.parquet")
    assert len(neighbours) == 600 and (neighbours["neighbour_0"] != neighbours.index).all()
