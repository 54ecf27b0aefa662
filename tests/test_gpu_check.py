import subprocess

import pytest

from tests.conftest import REPO_ROOT


@pytest.mark.slow
def test_the_gpu_check_runs_on_the_cpu_and_prints_its_table():
    result = subprocess.run(
        ["bash", "benchmarks/gpu_check.sh", "--cpu"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    [row] = [line.split() for line in result.stdout.splitlines() if line.strip().startswith("48x64")]
    size, compiled, train_cache, train_synthetic, share, infer_cache, infer_synthetic = row
    assert compiled == "off" and float(train_cache) > 0 and float(infer_synthetic) > 0
    # The speeds are printed to the nearest image per second and the share from the unrounded speeds.
    cache, synthetic = float(train_cache), float(train_synthetic)
    assert (cache - 0.5) / (synthetic + 0.5) - 0.005 <= float(share) <= (cache + 0.5) / (synthetic - 0.5) + 0.005
