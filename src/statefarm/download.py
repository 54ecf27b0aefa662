"""Download and unzip the competition with the ``kaggle`` package.

Usage::

    python -m statefarm.download [DEST] [--force]

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
import sys
from pathlib import Path

from statefarm.layout import DRIVER_LIST_FILE, SAMPLE_SUBMISSION_FILE

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
  3. Run `make download` again.
Without network access, copy the unzipped competition files (imgs/, {DRIVER_LIST_FILE},
{SAMPLE_SUBMISSION_FILE}) into the destination folder by hand instead."""


class DownloadError(RuntimeError):
    """The competition could not be downloaded; the message says what to do."""


def is_downloaded(dest: Path) -> bool:
    """Whether ``dest`` already holds the unzipped competition files."""
    return all((dest / name).exists() for name in ("imgs/train", "imgs/test", DRIVER_LIST_FILE, SAMPLE_SUBMISSION_FILE))


def _authenticated_api():
    # Importing kaggle authenticates once already; both attempts print Kaggle's own
    # help and the second exits when there are no credentials. Ours replaces both.
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        from kaggle.api.kaggle_api_extended import KaggleApi

        api = KaggleApi()
        try:
            api.authenticate()
        except SystemExit:
            raise DownloadError(CREDENTIALS_HELP) from None
    return api


def download_competition(dest: Path, force: bool = False) -> Path:
    """Download the competition zip into ``dest`` and unzip it there.

    Args:
        dest: Folder that receives ``imgs/`` and the two CSVs.
        force: Download again even when the files are already there.

    Returns:
        ``dest``.

    Raises:
        DownloadError: Without credentials, or when Kaggle refuses the download.
    """
    if is_downloaded(dest) and not force:
        logger.info("%s already holds the competition files; pass --force to download again", dest)
        return dest
    api = _authenticated_api()
    dest.mkdir(parents=True, exist_ok=True)
    logger.info("Downloading %s into %s (about 4 GB)...", COMPETITION, dest)
    try:
        api.competition_download_files(COMPETITION, path=str(dest), force=force, quiet=False, unzip=True)
    except Exception as error:
        status = getattr(getattr(error, "response", None), "status_code", None)
        hint = (
            f"accept the competition rules at https://www.kaggle.com/competitions/{COMPETITION}/rules "
            "with the account whose token you use, then try again"
            if status in (401, 403)
            else "check the network connection and try again"
        )
        raise DownloadError(f"Kaggle refused or failed the download ({type(error).__name__}): {hint}") from None
    if not is_downloaded(dest):
        raise DownloadError(
            f"{dest}: the download finished but imgs/train, imgs/test, {DRIVER_LIST_FILE} or "
            f"{SAMPLE_SUBMISSION_FILE} is missing; remove the folder and download again"
        )
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m statefarm.download", description=__doc__.splitlines()[0])
    parser.add_argument("dest", nargs="?", type=Path, default=DEFAULT_DEST, help=f"default: {DEFAULT_DEST}")
    parser.add_argument("--force", action="store_true", help="download again even if the files are there")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        download_competition(args.dest, force=args.force)
    except DownloadError as error:
        logger.error("%s", error)
        return 1
    logger.info("Competition files are in %s; next: kedro run --pipeline=data_prep", args.dest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
