"""Silver nodes: typing, dedupe, quarantine reasons, and the data-health table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stock_ml.pipelines.ingest.nodes import BRONZE_COLUMNS
from stock_ml.pipelines.silver.nodes import SILVER_COLUMNS, data_health, validate_prices
from stock_ml.synthetic import generate_ohlcv
from tests.pipelines.ingest.bronze import bronze_rows

PARSING = {"date_format": "%Y-%m-%d", "decimal": "."}
UNIVERSE = {"groups": {"warsaw": {"calendar": "XWAR", "symbols": ["AAA", "BBB", "CCC"]}}}
RUN_DATE = "2024-01-10"  # XWAR sessions of January 2024: 2, 3, 4, 5, 8, 9, 10 (1st is a holiday)


def _row(symbol, date, close, source_row, *, run_id="run-1", source_file="aaa_d"):
    return {
        "symbol": symbol,
        "date": date,
        "open": str(close),
        "high": str(float(close) + 1),
        "low": str(float(close) - 1),
        "close": str(close),
        "volume": "1000",
        "source": "csv_folder",
        "source_file": source_file,
        "source_row": source_row,
        "ingest_run_id": run_id,
    }


def _validate(rows, universe=UNIVERSE, run_date=RUN_DATE):
    bronze = pd.DataFrame(rows, columns=BRONZE_COLUMNS)
    return validate_prices(bronze, universe, PARSING, run_date)


def test_types_are_parsed_and_columns_fixed():
    silver, quarantine, _ = _validate(
        [_row("AAA", "2024-01-02", "10.5", 2), _row("AAA", "2024-01-03", "11", 3)]
    )
    assert list(silver.columns) == SILVER_COLUMNS
    assert pd.api.types.is_datetime64_any_dtype(silver["date"])
    # volume "1000" is all-integer text: silver's schema must not depend on that
    for column in ["open", "high", "low", "close", "volume"]:
        assert silver[column].dtype == np.float64, column
    assert silver["close"].tolist() == [10.5, 11.0]
    assert silver["high"].tolist() == [11.5, 12.0]
    assert quarantine.empty


def test_later_row_for_a_key_wins_and_output_is_sorted():
    rows = [
        _row("BBB", "2024-01-03", "50", 2),
        _row("AAA", "2024-01-03", "11", 3),
        _row("AAA", "2024-01-02", "10", 2),
        _row("AAA", "2024-01-03", "99", 3, run_id="run-2"),  # a later ingest of the same key
        _row("BBB", "2024-01-02", "49", 2, run_id="run-2"),
    ]
    silver, quarantine, accounting = _validate(rows)
    assert silver[["symbol", "date"]].apply(tuple, axis=1).tolist() == [
        ("AAA", pd.Timestamp("2024-01-02")),
        ("AAA", pd.Timestamp("2024-01-03")),
        ("BBB", pd.Timestamp("2024-01-02")),
        ("BBB", pd.Timestamp("2024-01-03")),
    ]
    kept = silver[(silver.symbol == "AAA") & (silver.date == "2024-01-03")].iloc[0]
    assert (kept["close"], kept["ingest_run_id"]) == (99.0, "run-2")
    assert quarantine[["close", "reason"]].values.tolist() == [["11", "duplicate_key"]]
    assert accounting.set_index("symbol").loc["AAA"].to_dict() == {
        "rows_read": 3,
        "exact_duplicates": 0,
        "quarantined": 1,
        "kept": 2,
    }


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("close", "12,5", "unparseable_close"),
        ("volume", "n/a", "unparseable_volume"),
        ("date", "2024/01/03", "unparseable_date"),
        ("close", "", "missing_close"),
    ],
)
def test_unparseable_values_are_quarantined_with_file_and_row(field, value, reason):
    rows = [
        _row("AAA", "2024-01-02", "10", 2),
        _row("AAA", "2024-01-03", "11", 3),
        _row("BBB", "2024-01-02", "20", 2, source_file="bbb_d"),
    ]
    rows[1][field] = value
    silver, quarantine, _ = _validate(rows)
    assert quarantine[["source_file", "source_row", "reason"]].values.tolist() == [
        ["aaa_d", 3, reason]
    ]
    assert quarantine[field].iloc[0] == value, "quarantine keeps what the source said"
    assert len(silver) == 2


def test_decimal_comma_and_day_first_dates_parse_when_conf_says_so():
    rows = [_row("AAA", "2024-01-02", "10", 2), _row("AAA", "2024-01-03", "11", 3)]
    for row in rows:
        day = pd.Timestamp(row["date"])
        row.update({f: row[f].replace(".", ",") for f in ["open", "high", "low", "close"]})
        row["date"] = day.strftime("%d.%m.%Y")
    rows[1]["close"] = "1.100,5"  # a thousands separator is not a decimal mark: quarantined
    silver, quarantine, _ = validate_prices(
        pd.DataFrame(rows, columns=BRONZE_COLUMNS),
        UNIVERSE,
        {"date_format": "%d.%m.%Y", "decimal": ","},
        RUN_DATE,
    )
    assert silver[["date", "open", "high", "close"]].values.tolist() == [
        [pd.Timestamp("2024-01-02"), 10.0, 11.0, 10.0]
    ]
    assert quarantine[["source_row", "reason"]].values.tolist() == [[3, "unparseable_close"]]


def test_every_defect_of_a_row_is_listed():
    row = _row("AAA", "2024-01-02", "10", 7)
    row["open"], row["low"] = "", "x"
    _, quarantine, _ = _validate([row])
    assert quarantine["reasons"].tolist() == ["missing_open;unparseable_low"]
    assert quarantine["reason"].tolist() == ["missing_open"]


def test_synthetic_bronze_recovers_generated_prices():
    source = {
        "kind": "synthetic",
        "synthetic": {"seed": 5, "symbols": ["BBB", "AAA"], "start": "2024-01-01", "sessions": 30},
    }
    silver, quarantine, _ = validate_prices(
        bronze_rows({}, source, {}, UNIVERSE, "run-1"),
        {"groups": {"warsaw": {"calendar": "XWAR", "symbols": ["AAA", "BBB"]}}},
        PARSING,
        "2024-12-31",
    )
    assert quarantine.empty, "the generator follows the exchange calendar and valid OHLC"
    expected = (
        generate_ohlcv(["BBB", "AAA"], "2024-01-01", 30, 5)
        .sort_values(["symbol", "date"])
        .reset_index(drop=True)
    )
    # pd.to_numeric's fast parser may differ from float() in the last bit: compare to 1e-12.
    pd.testing.assert_frame_equal(
        silver.drop(columns="ingest_run_id"), expected, check_exact=False, rtol=1e-12
    )


def test_data_health_completeness_freshness_and_status():
    rows = [
        _row("AAA", d, "10", i)
        for i, d in enumerate(["2024-01-02", "2024-01-03", "2024-01-05", "2024-01-10"], 2)
    ]
    rows += [
        _row("BBB", d, "20", i) for i, d in enumerate(["2024-01-02", "2024-01-03", "2024-01-04"], 2)
    ]
    rows += [_row("ZZZ", "2024-01-02", "5", 2)]
    silver, _, accounting = _validate(rows)
    health = data_health(silver, accounting, UNIVERSE, RUN_DATE, max_sessions_behind=1).set_index(
        "symbol"
    )
    # AAA: 7 sessions from Jan 2 to Jan 10, 4 rows -> 3 missing; up to date
    assert health.loc["AAA", ["missing_sessions", "sessions_behind", "status"]].tolist() == [
        3,
        0,
        "fresh",
    ]
    # BBB: complete Jan 2..4 but 4 sessions (5, 8, 9, 10) behind the run date -> stale
    assert health.loc["BBB", ["missing_sessions", "sessions_behind", "status"]].tolist() == [
        0,
        4,
        "stale",
    ]
    assert health.loc["CCC", "status"] == "missing"
    assert health.loc["ZZZ", ["status", "quarantined", "kept"]].tolist() == [
        "not_in_universe",
        1,
        0,
    ]
    expected_last = health["expected_last_session"]
    assert (expected_last[["AAA", "BBB", "CCC"]] == pd.Timestamp(RUN_DATE)).all()
    assert pd.isna(expected_last["ZZZ"]), "no group, no calendar to expect sessions from"


def test_each_symbol_is_checked_against_its_own_groups_calendar():
    universe = {
        "groups": {
            "warsaw": {"calendar": "XWAR", "symbols": ["AAA"]},
            "us_markets": {"calendar": "XNYS", "symbols": ["USA"]},
        }
    }
    # 2024-01-15: Martin Luther King Day, NYSE closed, Warsaw open.
    # 2024-01-06 is a Saturday; 2024-01-02 is a session on both.
    rows = [
        _row("AAA", "2024-01-15", "10", 2),
        _row("USA", "2024-01-15", "10", 2, source_file="usa_d"),
        _row("USA", "2024-01-02", "10", 3, source_file="usa_d"),
    ]
    silver, quarantine, _ = _validate(rows, universe=universe, run_date="2024-01-31")
    assert silver[["symbol", "date"]].values.tolist() == [
        ["AAA", pd.Timestamp("2024-01-15")],
        ["USA", pd.Timestamp("2024-01-02")],
    ]
    assert quarantine[["source_file", "reason"]].values.tolist() == [["usa_d", "not_a_session"]]
    health = data_health(
        silver, _validate(rows, universe, "2024-01-31")[2], universe, "2024-01-31", 1
    )
    health = health.set_index("symbol")
    assert health["group"].to_dict() == {"AAA": "warsaw", "USA": "us_markets"}
    # last expected session per group's own calendar: both exchanges open on Wed 31 Jan
    assert (health["expected_last_session"] == pd.Timestamp("2024-01-31")).all()


def test_freshness_is_summarised_per_group_in_the_log(caplog):
    rows = [_row("AAA", "2024-01-02", "10", 2), _row("BBB", "2024-01-08", "10", 2)]
    silver, _, accounting = _validate(rows)
    with caplog.at_level("INFO"):
        data_health(silver, accounting, UNIVERSE, RUN_DATE, max_sessions_behind=1)
    assert (
        "Freshness of warsaw (XWAR): last expected session 2024-01-10; 2 of 3 symbols stored, "
        "newest 2024-01-08, at most 6 sessions behind"
    ) in caplog.text
