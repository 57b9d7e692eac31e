"""One ingest run's bronze rows, for tests that start from bronze."""

from __future__ import annotations

import pandas as pd

from stock_ml.pipelines.ingest.nodes import extract_prices

FULL_PLAN = {"mode": "full", "after": {}, "chunks": [[None, None]]}
ISO_DATES = {"date_format": "%Y-%m-%d", "decimal": "."}


def no_yahoo(*args, **kwargs):
    raise AssertionError("this test must not fetch from Yahoo")


def run_of(run_id: str, date: str = "2026-11-23") -> dict:
    return {"id": run_id, "date": date, "time": f"{date}T18:00:00+00:00"}


def bronze_rows(
    partitions: dict,
    source: dict,
    csv_formats: dict,
    universe: dict,
    run_id: str,
    *,
    plan: dict = FULL_PLAN,
    parsing: dict = ISO_DATES,
    fetch=no_yahoo,
    scope: dict | None = None,
) -> pd.DataFrame:
    """``extract_prices`` for one run, unwrapped from its single bronze partition; ``scope``
    narrows the run (``{"symbols": [...]}`` and/or ``{"exchange_groups": [...]}``)."""
    run = {**run_of(run_id), **(scope or {})}
    partition = extract_prices(partitions, fetch, plan, source, csv_formats, universe, parsing, run)
    assert len(partition) == 1, "one run writes exactly one bronze partition"
    return next(iter(partition.values()))
