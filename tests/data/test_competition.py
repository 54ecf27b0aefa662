import logging
import os
import subprocess
import sys

import pandas as pd
import pytest

from statefarm.data.competition import KaggleError, download_competition, main, submit_to_competition
from statefarm.data.submission import SubmissionError
from tests.conftest import read_csvs, write_raw_dataset


@pytest.fixture
def no_credentials(monkeypatch, tmp_path):
    """A user with no Kaggle token or key anywhere."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "home" / ".kaggle"))
    for name in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY"):
        monkeypatch.delenv(name, raising=False)


def test_without_credentials_it_says_exactly_what_to_do(no_credentials, tmp_path):
    with pytest.raises(KaggleError) as error:
        download_competition(tmp_path / "dest")
    message = str(error.value)
    assert "https://www.kaggle.com/settings/api" in message
    assert "KAGGLE_API_TOKEN" in message and "~/.kaggle/kaggle.json" in message
    assert "rules" in message


def test_command_exits_nonzero_with_the_instructions(no_credentials, tmp_path, caplog):
    with caplog.at_level(logging.ERROR):
        assert main(["download", str(tmp_path / "dest")]) == 1
    assert "No Kaggle credentials found" in caplog.text


def test_existing_download_is_kept(no_credentials, tmp_path):
    dest = write_raw_dataset(tmp_path / "dest")
    before = sorted(p.name for p in dest.rglob("*"))
    assert download_competition(dest) == dest  # no credentials needed: nothing to fetch
    assert sorted(p.name for p in dest.rglob("*")) == before


def _uniform_submission(tmp_path):
    """A valid submission for the tiny dataset's test images, and its sample_submission.csv."""
    root = write_raw_dataset(tmp_path / "raw")
    _, sample = read_csvs(root)
    path = tmp_path / "submission.csv"
    sample.to_csv(path, index=False)
    return path, root / "sample_submission.csv"


def test_submit_without_credentials_says_what_to_do(no_credentials, tmp_path):
    path, sample = _uniform_submission(tmp_path)
    with pytest.raises(KaggleError, match="No Kaggle credentials found"):
        submit_to_competition(path, "test", sample)


def test_a_bad_or_missing_submission_is_refused_before_kaggle_is_asked(no_credentials, tmp_path, caplog):
    path, sample = _uniform_submission(tmp_path)
    with pytest.raises(SubmissionError, match=rf"^{tmp_path / 'none.csv'}: no such file$"):
        submit_to_competition(tmp_path / "none.csv", "test")
    (tmp_path / "header.csv").write_text("img,c0\nimg_1.jpg,1.0\n")
    with pytest.raises(SubmissionError, match=r"header.csv: header must be img,c0,c1,.*c9, got img,c0$"):
        submit_to_competition(tmp_path / "header.csv", "test")
    short = pd.read_csv(path).iloc[1:]
    short.to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(SubmissionError, match=r"short.csv: 1 test image\(s\) have no row"):
        submit_to_competition(tmp_path / "short.csv", "test", sample)
    with caplog.at_level(logging.ERROR):
        assert main(["submit", str(tmp_path / "header.csv")]) == 1
    assert "header must be" in caplog.text and "Submitting" not in caplog.text


def test_an_unreachable_kaggle_ends_in_one_line_without_the_token(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.upper().startswith(("KAGGLE_", "NO_PROXY"))}
    # A proxy on a closed local port: the sign-in fails at once, and nothing leaves this machine.
    env |= {"HOME": str(tmp_path), "KAGGLE_API_TOKEN": "not-a-real-token-123", "HTTPS_PROXY": "http://127.0.0.1:9"}
    result = subprocess.run(
        [sys.executable, "-m", "statefarm.data.competition", "download", str(tmp_path / "dest")],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 1
    assert output.splitlines() == [
        "signing in to Kaggle failed (ProxyError): could not reach Kaggle: check the network connection "
        "(and any proxy settings), then try again"
    ]
    assert "not-a-real-token" not in output


def test_a_failed_download_with_a_legacy_key_leaves_no_folder_behind(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.upper().startswith(("KAGGLE_", "NO_PROXY"))}
    # A legacy key signs in offline; the download itself then meets the closed proxy port.
    env |= {"HOME": str(tmp_path), "KAGGLE_USERNAME": "someone", "KAGGLE_KEY": "0" * 32,
            "HTTPS_PROXY": "http://127.0.0.1:9"}  # fmt: skip
    dest = tmp_path / "data" / "dest"
    result = subprocess.run(
        [sys.executable, "-m", "statefarm.data.competition", "download", str(dest)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "the download failed" in result.stdout + result.stderr
    assert not dest.exists()
