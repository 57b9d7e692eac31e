"""Run identity shared by the layers that partition their output by ingest run.

Bronze, the quarantine table and the row accounting of a run are stored under the same partition
key, so rerunning a run id replaces exactly its own partitions and nothing else.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile(r"[^A-Za-z0-9_.=-]+")


def safe_run_id(run_id: str) -> str:
    """A run id usable as a folder or file name (Airflow's contain ':' and '+')."""
    safe = _UNSAFE.sub("_", str(run_id)).strip("._")
    if not safe:
        raise ValueError(f"run id {run_id!r} has no usable characters")
    return safe


def run_partition_key(run: dict) -> str:
    """``ingest_date=<run date>/run_id=<run id>``: partitioned by ingest date, one file per run."""
    return f"ingest_date={run['date']}/run_id={safe_run_id(run['id'])}"
