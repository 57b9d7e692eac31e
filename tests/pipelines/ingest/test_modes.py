"""Ingest modes: what a run fetches given the mode and what silver already stores."""

from __future__ import annotations

import pandas as pd
import pytest

from stock_ml.pipelines.ingest.nodes import monthly_chunks, plan_ingest
from stock_ml.runs import run_partition_key, safe_run_id
from tests.pipelines.ingest.bronze import bronze_rows, run_of
from tests.pipelines.ingest.test_nodes import VENDOR_COLUMNS

UNIVERSE = {"groups": {"warsaw": {"calendar": "XWAR", "symbols": ["AAA", "BBB"]}}}
SOURCE = {
    "kind": "synthetic",
    "synthetic": {"seed": 3, "symbols": ["AAA", "BBB"], "start": "2024-01-01", "sessions": 60},
}


def _stored(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["symbol", "date", "ingest_run_id"])
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


EMPTY = _stored([])


def _plan(mode: str, stored: pd.DataFrame = EMPTY, run_id: str = "run-2", **backfill) -> dict:
    ingest = {"mode": mode, "backfill": {"start": None, "end": None, **backfill}}
    return plan_ingest(stored, ingest, UNIVERSE, run_of(run_id))


def test_incremental_watermark_is_the_last_stored_session_per_symbol():
    stored = _stored(
        [
            ("AAA", "2024-01-02", "run-1"),
            ("AAA", "2024-02-05", "run-1"),
            ("BBB", "2024-01-31", "run-1"),
        ]
    )
    assert _plan("incremental", stored)["after"] == {"AAA": "2024-02-05", "BBB": "2024-01-31"}


def test_incremental_rerun_ignores_rows_its_own_earlier_attempt_stored():
    stored = _stored([("AAA", "2024-01-31", "run-1"), ("AAA", "2024-02-05", "run-2")])
    assert _plan("incremental", stored, run_id="run-2")["after"] == {"AAA": "2024-01-31"}


def test_incremental_with_nothing_stored_fetches_everything():
    plan = _plan("incremental")
    assert plan["after"] == {}
    full = bronze_rows({}, SOURCE, {}, UNIVERSE, "run-2", plan=plan)
    assert len(full) == 2 * 60


def test_incremental_keeps_only_sessions_after_each_symbols_watermark():
    everything = bronze_rows({}, SOURCE, {}, UNIVERSE, "run-1")
    plan = _plan("incremental", _stored([("AAA", "2024-03-01", "r"), ("BBB", "2024-03-20", "r")]))
    new = bronze_rows({}, SOURCE, {}, UNIVERSE, "run-2", plan=plan)
    expected = everything[
        ((everything.symbol == "AAA") & (everything.date > "2024-03-01"))
        | ((everything.symbol == "BBB") & (everything.date > "2024-03-20"))
    ]
    assert new[["symbol", "date"]].values.tolist() == expected[["symbol", "date"]].values.tolist()
    assert set(new["ingest_mode"]) == {"incremental"}
    assert set(new["ingest_time"]) == {"2026-11-23T18:00:00+00:00"}


def test_incremental_never_drops_a_row_whose_date_does_not_parse():
    frame = pd.DataFrame(
        {
            "Data": ["2024-01-02", "02.01.2024", "2024-01-03"],
            "Otwarcie": "1",
            "Najwyzszy": "1",
            "Najnizszy": "1",
            "Zamkniecie": "1",
            "Wolumen": "1",
        }
    )
    csv = {"symbol_pattern": "(?P<symbol>[a-z]+)_d", "columns": VENDOR_COLUMNS}
    plan = _plan("incremental", _stored([("AAA", "2024-01-02", "run-1")]))
    new = bronze_rows(
        {"aaa_d": lambda: frame},
        {"kind": "csv_folder", "csv_format": "v"},
        {"v": csv},
        UNIVERSE,
        "run-2",
        plan=plan,
    )
    # 2024-01-02 is stored already; the unparseable one goes on to silver's quarantine
    assert new["date"].tolist() == ["02.01.2024", "2024-01-03"]
    assert new["source_row"].tolist() == [3, 4]


def test_backfill_takes_the_range_in_monthly_chunks():
    plan = _plan("backfill", start="2024-01-15", end="2024-03-10")
    assert plan["chunks"] == [
        ["2024-01-15", "2024-01-31"],
        ["2024-02-01", "2024-02-29"],
        ["2024-03-01", "2024-03-10"],
    ]
    rows = bronze_rows({}, SOURCE, {}, UNIVERSE, "run-2", plan=plan)
    dates = pd.to_datetime(rows["date"])
    assert dates.min() == pd.Timestamp("2024-01-15")
    assert dates.max() <= pd.Timestamp("2024-03-10")
    by_chunk = rows.groupby("ingest_chunk")["date"].agg(["min", "max"])
    assert list(by_chunk.index) == ["2024-01", "2024-02", "2024-03"]
    assert (by_chunk["min"].str[:7] == by_chunk.index).all()
    assert (by_chunk["max"].str[:7] == by_chunk.index).all()


def test_monthly_chunks_of_a_range_inside_one_month():
    assert monthly_chunks(pd.Timestamp("2024-05-02"), pd.Timestamp("2024-05-03")) == [
        ["2024-05-02", "2024-05-03"]
    ]


@pytest.mark.parametrize(
    ("backfill", "message"),
    [
        ({}, "backfill needs a range"),
        ({"start": "2024-01-01"}, "backfill needs a range"),
        ({"start": "2024-03-01", "end": "2024-01-01"}, "start 2024-03-01 is after its end"),
        ({"start": "2026-11-01", "end": "2026-12-31"}, "after the run date 2026-11-23"),
    ],
)
def test_backfill_rejects_a_missing_or_impossible_range(backfill, message):
    with pytest.raises(ValueError, match=message):
        _plan("backfill", **backfill)


def test_an_unknown_mode_is_an_error():
    with pytest.raises(ValueError, match=r"ingest.mode must be one of .* got 'delta'"):
        _plan("delta")


def test_a_run_writes_one_partition_keyed_by_ingest_date_and_run_id():
    key = run_partition_key(run_of("manual__2026-11-23T18:00:00+00:00"))
    assert key == "ingest_date=2026-11-23/run_id=manual__2026-11-23T18_00_00_00_00"
    assert safe_run_id("scheduled__2026-11-23T17:00:00+00:00") == (
        "scheduled__2026-11-23T17_00_00_00_00"
    )
