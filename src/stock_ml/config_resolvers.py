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
