"""Silver merge by ingest mode, and validating one run's bronze partition."""

from __future__ import annotations

import pandas as pd
import pytest

from stock_ml.pipelines.ingest.nodes import BRONZE_COLUMNS
from stock_ml.pipelines.silver.nodes import (
    SILVER_COLUMNS,
    merge_silver,
    run_data_health,
    validate_run,
)
from stock_ml.runs import run_partition_key
from tests.pipelines.ingest.bronze import ISO_DATES, run_of

UNIVERSE = {"groups": {"warsaw": {"calendar": "XWAR", "symbols": ["AAA", "BBB"]}}}


def _silver(rows: list[tuple[str, str, float, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["symbol", "date", "close", "ingest_run_id"])
    frame["date"] = pd.to_datetime(frame["date"])
    for column in ["open", "high", "low", "volume"]:
        frame[column] = frame["close"]
    return frame[SILVER_COLUMNS]


def _merge(stored, new, mode, run_id="run-2", **backfill):
    ingest = {"mode": mode, "backfill": backfill}
    merged = merge_silver(stored, new, ingest, UNIVERSE, run_of(run_id))
    return [
        (r.symbol, r.date.date().isoformat(), r.close, r.ingest_run_id) for r in merged.itertuples()
    ]


STORED = _silver(
    [
        ("AAA", "2024-01-02", 1.0, "run-1"),
        ("AAA", "2024-01-03", 2.0, "run-1"),
        ("BBB", "2024-01-02", 5.0, "run-1"),
    ]
)


def test_incremental_appends_new_sessions_to_what_is_stored():
    new = _silver([("AAA", "2024-01-04", 3.0, "run-2"), ("BBB", "2024-01-03", 6.0, "run-2")])
    assert _merge(STORED, new, "incremental") == [
        ("AAA", "2024-01-02", 1.0, "run-1"),
        ("AAA", "2024-01-03", 2.0, "run-1"),
        ("AAA", "2024-01-04", 3.0, "run-2"),
        ("BBB", "2024-01-02", 5.0, "run-1"),
        ("BBB", "2024-01-03", 6.0, "run-2"),
    ]


def test_incremental_with_nothing_new_changes_nothing():
    merged = merge_silver(STORED, STORED.iloc[0:0], {"mode": "incremental"}, UNIVERSE, run_of("r"))
    pd.testing.assert_frame_equal(merged, STORED)


def test_a_rerun_replaces_its_earlier_attempt_instead_of_stacking():
    first_attempt = _silver(
        [("AAA", "2024-01-04", 3.0, "run-2"), ("BBB", "2024-01-04", 9.0, "run-2")]
    )
    stored = pd.concat([STORED, first_attempt], ignore_index=True)
    rerun = _silver([("AAA", "2024-01-04", 3.5, "run-2")])
    assert _merge(stored, rerun, "incremental") == [
        ("AAA", "2024-01-02", 1.0, "run-1"),
        ("AAA", "2024-01-03", 2.0, "run-1"),
        ("AAA", "2024-01-04", 3.5, "run-2"),
        ("BBB", "2024-01-02", 5.0, "run-1"),
    ]


def test_full_rebuilds_from_this_run_alone():
    new = _silver([("AAA", "2024-01-03", 2.5, "run-2")])
    assert _merge(STORED, new, "full") == [("AAA", "2024-01-03", 2.5, "run-2")]


def test_backfill_replaces_the_range_and_keeps_the_rest():
    stored = pd.concat(
        [
            STORED,
            _silver([("AAA", "2024-02-01", 7.0, "run-1"), ("BBB", "2024-01-04", 8.0, "run-1")]),
        ],
        ignore_index=True,
    )
    # the source no longer has BBB 2024-01-04: a backfill of January removes it
    new = _silver([("AAA", "2024-01-03", 2.2, "run-2"), ("BBB", "2024-01-02", 5.5, "run-2")])
    assert _merge(stored, new, "backfill", start="2024-01-01", end="2024-01-31") == [
        ("AAA", "2024-01-03", 2.2, "run-2"),
        ("AAA", "2024-02-01", 7.0, "run-1"),
        ("BBB", "2024-01-02", 5.5, "run-2"),
    ]


def _bronze(rows: list[tuple[str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(
        [
            {
                "symbol": symbol,
                "date": date,
                "open": "10",
                "high": "11",
                "low": "9",
                "close": "10.5",
                "volume": "100",
                "source": "csv_folder",
                "source_file": "aaa_d",
                "source_row": i + 2,
                "ingest_run_id": "run-2",
                "ingest_time": "t",
                "ingest_mode": "incremental",
                "ingest_chunk": "all",
            }
            for i, (symbol, date) in enumerate(rows)
        ],
        columns=BRONZE_COLUMNS,
    )
    return frame


def test_validate_run_reads_only_this_runs_partition():
    run = run_of("run-2", "2024-01-10")

    def not_this_run():
        raise AssertionError("another run's bronze must not be loaded")

    partitions = {
        run_partition_key(run_of("run-1", "2024-01-09")): not_this_run,
        run_partition_key(run): lambda: _bronze([("AAA", "2024-01-08"), ("AAA", "2024-01-13")]),
    }
    silver, quarantine, accounting = validate_run(partitions, UNIVERSE, ISO_DATES, run)
    assert silver["date"].dt.strftime("%Y-%m-%d").tolist() == ["2024-01-08"]
    ((key, rejected),) = quarantine.items()
    assert key == run_partition_key(run)
    assert rejected["reason"].tolist() == ["future_date"]
    assert accounting[["rows_read", "kept", "quarantined"]].values.tolist() == [[2, 1, 1]]


def test_validate_run_of_an_empty_partition_keeps_the_identity():
    run = run_of("run-3", "2024-01-10")
    silver, quarantine, accounting = validate_run(
        {run_partition_key(run): lambda: _bronze([])}, UNIVERSE, ISO_DATES, run
    )
    assert silver.empty
    assert next(iter(quarantine.values())).empty
    assert accounting.empty


def test_validate_run_without_its_bronze_partition_says_to_ingest_first():
    with pytest.raises(ValueError, match="No bronze partition .*run-9.* run the ingest pipeline"):
        validate_run({}, UNIVERSE, ISO_DATES, run_of("run-9"))


def test_run_health_is_keyed_by_run_and_logs_rows_per_symbol(caplog):
    run = run_of("run-2", "2024-01-10")
    partitions = {
        run_partition_key(run): lambda: _bronze(
            [("AAA", "2024-01-08"), ("AAA", "2024-01-09"), ("AAA", "2024-01-13")]
        )
    }
    silver, _, accounting = validate_run(partitions, UNIVERSE, ISO_DATES, run)
    with caplog.at_level("INFO"):
        (health,) = run_data_health(silver, accounting, UNIVERSE, run, 1).values()
    assert health.set_index("symbol").loc["AAA", ["rows_read", "kept", "quarantined"]].tolist() == [
        3,
        2,
        1,
    ]
    table = caplog.text.split("Rows per symbol (this run):")[1].splitlines()
    assert table[1].split()[:4] == ["symbol", "rows_read", "kept", "quarantined"]
    assert table[2].split()[:4] == ["AAA", "3", "2", "1"]
    assert table[3].split()[:2] == ["BBB", "0"], "a universe symbol with no rows is listed"


# --- a run narrowed to a scope (run.symbols / run.exchange_groups) ------------------------------


def _narrowed_merge(stored, new, mode, symbols, **backfill):
    ingest = {"mode": mode, "backfill": backfill}
    run = {**run_of("run-2"), "symbols": symbols}
    merged = merge_silver(stored, new, ingest, UNIVERSE, run)
    return [
        (r.symbol, r.date.date().isoformat(), r.close, r.ingest_run_id) for r in merged.itertuples()
    ]


def test_a_narrowed_full_run_rebuilds_its_symbols_and_keeps_the_others():
    new = _silver([("AAA", "2024-01-03", 2.5, "run-2")])
    assert _narrowed_merge(STORED, new, "full", ["AAA"]) == [
        ("AAA", "2024-01-03", 2.5, "run-2"),
        ("BBB", "2024-01-02", 5.0, "run-1"),
    ]


def test_a_narrowed_backfill_replaces_only_its_symbols_rows_of_the_range():
    new = _silver([("AAA", "2024-01-03", 2.2, "run-2")])
    assert _narrowed_merge(
        STORED, new, "backfill", "AAA", start="2024-01-01", end="2024-01-31"
    ) == [
        ("AAA", "2024-01-03", 2.2, "run-2"),
        ("BBB", "2024-01-02", 5.0, "run-1"),  # BBB was not refetched: its row stays
    ]


def test_a_narrowed_runs_health_expects_only_its_scope():
    run = {**run_of("run-2", "2024-01-10"), "symbols": ["AAA"]}
    partitions = {run_partition_key(run): lambda: _bronze([("AAA", "2024-01-09")])}
    silver, _, accounting = validate_run(partitions, UNIVERSE, ISO_DATES, run)
    merged = merge_silver(STORED, silver, {"mode": "incremental"}, UNIVERSE, run)
    assert set(merged["symbol"]) == {"AAA", "BBB"}, "silver keeps every symbol"
    (health,) = run_data_health(merged, accounting, UNIVERSE, run, 1).values()
    assert health[["symbol", "group", "rows_read", "kept", "status"]].values.tolist() == [
        ["AAA", "warsaw", 1, 1, "fresh"]
    ]
    whole = run_data_health(merged, accounting, UNIVERSE, run_of("run-2", "2024-01-10"), 1)
    assert next(iter(whole.values()))["symbol"].tolist() == ["AAA", "BBB"], "without a scope"
