"""The competition on Kaggle, through the ``kaggle`` package: download the data, submit a file.

Usage::

    python -m statefarm.data.competition download [DEST] [--force]
    python -m statefarm.data.competition submit FILE [--message TEXT]

``DEST`` defaults to ``data/01_raw/state-farm-distracted-driver-detection``,
where ``conf/base`` reads it. Credentials come from wherever the ``kaggle``
package looks for them (``KAGGLE_API_TOKEN``, ``~/.kaggle/access_token``,
``KAGGLE_USERNAME``/``KAGGLE_KEY``, ``~/.kaggle/kaggle.json`` or
``kaggle auth login``); they are never read, printed or logged here.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import shutil
import sys
from pathlib import Path

import pandas as pd

from statefarm.data.layout import DRIVER_LIST_FILE, SAMPLE_SUBMISSION_FILE
from statefarm.data.submission import SubmissionError, validate_submission

logger = logging.getLogger(__name__)

COMPETITION = "state-farm-distracted-driver-detection"
DEFAULT_DEST = Path("data/01_raw") / COMPETITION

CREDENTIALS_HELP = f"""\
No Kaggle credentials found. To download the competition:
  1. Sign in at https://www.kaggle.com and accept the rules at
     https://www.kaggle.com/competitions/{COMPETITION}/rules
  2. Create an API token at https://www.kaggle.com/settings/api and either
       export KAGGLE_API_TOKEN=<the token>          (or save it to ~/.kaggle/access_token)
     or, with a legacy kaggle.json key, save it to ~/.kaggle/kaggle.json (chmod 600)
       or export KAGGLE_USERNAME=<user> KAGGLE_KEY=<key>
  3. Run the command again.
Without network access, copy the unzipped competition files (imgs/, {DRIVER_LIST_FILE},
{SAMPLE_SUBMISSION_FILE}) into the destination folder by hand instead."""


class KaggleError(RuntimeError):
    """Kaggle could not be reached or refused; the message says what to do."""


def is_downloaded(dest: Path) -> bool:
    """Whether ``dest`` already holds the unzipped competition files."""
    return all((dest / name).exists() for name in ("imgs/train", "imgs/test", DRIVER_LIST_FILE, SAMPLE_SUBMISSION_FILE))


def _failure(error: Exception, action: str) -> KaggleError:
    """One line saying what failed and what to check; never the error's text, which may quote a request."""
    status = getattr(getattr(error, "response", None), "status_code", None)
    if status in (401, 403):
        hint = (
            "Kaggle refused the credentials or the access: check the token (KAGGLE_API_TOKEN, "
            f"~/.kaggle/access_token or kaggle.json) and accept the rules at "
            f"https://www.kaggle.com/competitions/{COMPETITION}/rules with that account"
        )
    elif isinstance(error, OSError) or "Connection" in type(error).__name__ or "Timeout" in type(error).__name__:
        hint = "could not reach Kaggle: check the network connection (and any proxy settings), then try again"
    else:
        hint = f"Kaggle answered {status or 'with an error'}; try again later"
    return KaggleError(f"{action} failed ({type(error).__name__}): {hint}")


def _authenticated_api():
    # Importing kaggle authenticates once already; both attempts print Kaggle's own
    # help and the second exits when there are no credentials. Ours replaces both.
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            from kaggle.api.kaggle_api_extended import KaggleApi

            api = KaggleApi()
            api.authenticate()
        except SystemExit:
            raise KaggleError(CREDENTIALS_HELP) from None
        except Exception as error:  # a token is checked online: network and refusals land here
            raise _failure(error, "signing in to Kaggle") from None
    return api


def download_competition(dest: Path, force: bool = False) -> Path:
    """Download the competition zip into ``dest`` and unzip it there.

    Args:
        dest: Folder that receives ``imgs/`` and the two CSVs.
        force: Download again even when the files are already there.

    Returns:
        ``dest``.

    Raises:
        KaggleError: Without credentials, or when Kaggle refuses the download.
    """
    if is_downloaded(dest) and not force:
        logger.info("%s already holds the competition files; pass --force to download again", dest)
        return dest
    api = _authenticated_api()
    created = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    logger.info("Downloading %s into %s (about 4 GB)...", COMPETITION, dest)
    try:
        api.competition_download_files(COMPETITION, path=str(dest), force=force, quiet=False, unzip=True)
    except Exception as error:
        if created:  # nothing of a failed download is worth keeping
            shutil.rmtree(dest, ignore_errors=True)
        raise _failure(error, "the download") from None
    if not is_downloaded(dest):
        raise KaggleError(
            f"{dest}: the download finished but imgs/train, imgs/test, {DRIVER_LIST_FILE} or "
            f"{SAMPLE_SUBMISSION_FILE} is missing; remove the folder and download again"
        )
    return dest


def check_submission_file(path: Path, sample_submission: Path | None = None) -> None:
    """The checks the pipeline makes before it writes a submission, on a file about to be uploaded.

    Args:
        path: The submission CSV.
        sample_submission: Kaggle's ``sample_submission.csv``, when at hand: then every
            test image must have a row, and only those.

    Raises:
        SubmissionError: Naming the file and what is wrong with it.
    """
    if not path.is_file():
        raise SubmissionError(f"{path}: no such file")
    expected = pd.read_csv(sample_submission)["img"] if sample_submission is not None else None
    try:
        validate_submission(pd.read_csv(path), expected)
    except (SubmissionError, ValueError, pd.errors.ParserError) as error:
        raise SubmissionError(f"{path}: {error}") from None


def submit_to_competition(path: Path, message: str, sample_submission: Path | None = None) -> None:
    """Check a submission CSV (``check_submission_file``), then upload it to the competition's leaderboard.

    Raises:
        SubmissionError: The file is missing or malformed; nothing was uploaded.
        KaggleError: Without credentials, or when Kaggle refuses the submission.
    """
    check_submission_file(path, sample_submission)
    api = _authenticated_api()
    logger.info("Submitting %s to %s: %s", path, COMPETITION, message)
    try:
        api.competition_submit(str(path), message, COMPETITION, quiet=True)
    except Exception as error:
        raise _failure(error, f"the submission of {path}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m statefarm.data.competition", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    download = commands.add_parser("download", help="download and unzip the competition files")
    download.add_argument("dest", nargs="?", type=Path, default=DEFAULT_DEST, help=f"default: {DEFAULT_DEST}")
    download.add_argument("--force", action="store_true", help="download again even if the files are there")
    submit = commands.add_parser("submit", help="upload a submission CSV")
    submit.add_argument("file", type=Path)
    submit.add_argument("--message", "-m", default="statefarm")
    default_sample = DEFAULT_DEST / SAMPLE_SUBMISSION_FILE
    submit.add_argument(
        "--sample-submission",
        type=Path,
        default=default_sample if default_sample.is_file() else None,
        help=f"check that every test image it lists has a row (default: {default_sample}, when there)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.command == "download":
            download_competition(args.dest, force=args.force)
            logger.info("Competition files are in %s; next: kedro run --pipelines=data_prep", args.dest)
        else:
            submit_to_competition(args.file, args.message, args.sample_submission)
    except (KaggleError, SubmissionError) as error:
        logger.error("%s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
