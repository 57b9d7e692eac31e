"""OmegaConf resolvers used by conf/ (registered in settings.py)."""

from datetime import UTC, datetime
from functools import cache


@cache
def run_stamp() -> str:
    """A run id for a manual run: one UTC timestamp per process, so every node agrees on it."""
    return "manual__" + datetime.now(UTC).strftime("%Y-%m-%dT%H.%M.%S.%fZ")


@cache
def today() -> str:
    """The run date of a manual run: today's UTC date, fixed once per process."""
    return datetime.now(UTC).date().isoformat()


@cache
def now() -> str:
    """The start time of this process's run (UTC, ISO 8601): bronze's ingest time."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@cache
def code_version() -> str:
    """Which code ran: ``<version>+g<commit>`` (``.dirty`` with uncommitted changes) from a git
    checkout, the package version alone where there is no git (an installed wheel, a copy).

    Logged with every MLflow run (``run.code_version``) and tagged on registered models.
    """
    import subprocess
    from pathlib import Path

    from stock_ml import __version__

    root = Path(__file__).resolve().parents[2]

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+g{commit}" + (".dirty" if dirty else "")
