"""Ingest nodes and the seeded synthetic generator."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stock_ml.pipelines.ingest.nodes import (
    BRONZE_COLUMNS,
    PRICE_COLUMNS,
    plan_ingest,
    read_csv_partitions,
)
from stock_ml.synthetic import generate_ohlcv
from tests.pipelines.ingest.bronze import bronze_rows

VENDOR_COLUMNS = {
    "Data": "date",
    "Otwarcie": "open",
    "Najwyzszy": "high",
    "Najnizszy": "low",
    "Zamkniecie": "close",
    "Wolumen": "volume",
}
# Every symbol these tests use, in one enabled group.
UNIVERSE = {"groups": {"all": {"calendar": "XWAR", "symbols": ["ABC", "XYZ", "AAA", "BBB"]}}}
CSV_CONF = {"symbol_pattern": "(?P<symbol>[a-z0-9]+)_d", "columns": VENDOR_COLUMNS}


def _vendor_file(dates: list[str], first_close: float, extra: bool = False) -> pd.DataFrame:
    """A vendor CSV as CSVDataset loads it with dtype=str (every value is text)."""
    rows = []
    for i, day in enumerate(dates):
        close = first_close + i
        rows.append(
            {
                "Data": day,
                "Otwarcie": f"{close - 0.5}",
                "Najwyzszy": f"{close + 1.0}",
                "Najnizszy": f"{close - 1.0}",
                "Zamkniecie": f"{close}",
                "Wolumen": f"{1000 + i}",
            }
        )
    frame = pd.DataFrame(rows)
    if extra:
        frame["Uwagi"] = "ignored vendor column"
    return frame


def _loader(frame: pd.DataFrame):
    return frame.copy  # a fresh copy on every load, like a dataset would


def _failing_loader():
    raise AssertionError("this partition must not be loaded")


@pytest.fixture
def partitions() -> dict:
    # Deliberately not in sorted order: the node must read partitions sorted by id.
    return {
        "xyz_d": _loader(_vendor_file(["2024-01-02", "2024-01-03"], 50.0)),
        "abc_d": _loader(_vendor_file(["2024-01-02", "2024-01-03", "2024-01-04"], 10.0, True)),
    }


# --- read_csv_partitions ------------------------------------------------------------------------


def test_read_csv_partitions_extracts_upper_case_symbol_from_file_name(partitions):
    frame = read_csv_partitions(partitions, CSV_CONF)
    assert frame["symbol"].tolist() == ["ABC"] * 3 + ["XYZ"] * 2
    assert frame["source_file"].tolist() == ["abc_d"] * 3 + ["xyz_d"] * 2


def test_read_csv_partitions_renames_vendor_columns_and_drops_unmapped_ones(partitions):
    frame = read_csv_partitions(partitions, CSV_CONF)
    assert list(frame.columns) == ["symbol", *PRICE_COLUMNS, "source_file", "source_row"]
    assert "Uwagi" not in frame.columns
    first = frame.iloc[0]
    assert first["date"] == "2024-01-02"
    assert first["open"] == "9.5"
    assert first["high"] == "11.0"
    assert first["low"] == "9.0"
    assert first["close"] == "10.0"
    assert first["volume"] == "1000"
    assert frame.loc[frame.symbol == "XYZ", "close"].tolist() == ["50.0", "51.0"]


def test_read_csv_partitions_numbers_source_rows_from_2_per_file(partitions):
    frame = read_csv_partitions(partitions, CSV_CONF)
    assert frame.loc[frame.symbol == "ABC", "source_row"].tolist() == [2, 3, 4]
    assert frame.loc[frame.symbol == "XYZ", "source_row"].tolist() == [2, 3]


def test_read_csv_partitions_rejects_file_name_not_matching_pattern(partitions):
    partitions["abc_daily"] = _loader(_vendor_file(["2024-01-02"], 1.0))
    with pytest.raises(ValueError, match=r"abc_daily: file name does not match symbol_pattern"):
        read_csv_partitions(partitions, CSV_CONF)


def test_read_csv_partitions_pattern_must_match_whole_name(partitions):
    # "abc_d_old" contains a match for the pattern but is not one: fullmatch, not search.
    partitions["abc_d_old"] = _loader(_vendor_file(["2024-01-02"], 1.0))
    with pytest.raises(ValueError, match="abc_d_old"):
        read_csv_partitions(partitions, CSV_CONF)


def test_read_csv_partitions_missing_column_names_the_file_and_the_column(partitions):
    partitions["bad_d"] = _loader(_vendor_file(["2024-01-02"], 1.0).drop(columns=["Wolumen"]))
    with pytest.raises(ValueError, match=r"bad_d: missing columns \['Wolumen'\]"):
        read_csv_partitions(partitions, CSV_CONF)


def test_read_csv_partitions_rejects_mapping_without_a_price_column(partitions):
    mapping = {k: v for k, v in VENDOR_COLUMNS.items() if v != "close"}
    with pytest.raises(ValueError, match=r"maps nothing to \['close'\]"):
        read_csv_partitions(partitions, {**CSV_CONF, "columns": mapping})


def test_read_csv_partitions_long_layout_takes_the_symbol_from_a_column():
    frame = pd.concat(
        [
            _vendor_file(["2024-01-02", "2024-01-03"], 10.0).assign(Ticker=" abc"),
            _vendor_file(["2024-01-02"], 50.0).assign(Ticker="xyz"),
        ],
        ignore_index=True,
    )
    conf = {"layout": "long", "columns": {**VENDOR_COLUMNS, "Ticker": "symbol"}}
    bronze = read_csv_partitions({"all_prices": _loader(frame)}, conf)
    assert bronze["symbol"].tolist() == ["ABC", "ABC", "XYZ"]
    assert bronze["source_file"].unique().tolist() == ["all_prices"]
    assert bronze["source_row"].tolist() == [2, 3, 4]
    assert bronze["close"].tolist() == ["10.0", "11.0", "50.0"]


def test_read_csv_partitions_long_layout_needs_a_symbol_column():
    with pytest.raises(ValueError, match=r"maps nothing to \['symbol'\]"):
        read_csv_partitions({}, {"layout": "long", "columns": VENDOR_COLUMNS})


def test_read_csv_partitions_rejects_an_unknown_layout(partitions):
    with pytest.raises(ValueError, match="layout must be 'per_ticker' or 'long'"):
        read_csv_partitions(partitions, {**CSV_CONF, "layout": "wide"})


def test_read_csv_partitions_rejects_an_empty_folder():
    with pytest.raises(ValueError, match="no files"):
        read_csv_partitions({}, CSV_CONF)


# --- extract_prices -----------------------------------------------------------------------------


SYNTHETIC = {"seed": 3, "symbols": ["AAA", "BBB"], "start": "2024-01-01", "sessions": 15}


def _synthetic_source(**overrides) -> dict:
    return {"kind": "synthetic", "synthetic": {**SYNTHETIC, **overrides}}


def test_extract_prices_csv_folder_stamps_lineage_and_keeps_text(partitions):
    bronze = bronze_rows(
        partitions,
        {"kind": "csv_folder", "csv_format": "vendor"},
        {"vendor": CSV_CONF},
        UNIVERSE,
        "run-42",
    )
    assert list(bronze.columns) == BRONZE_COLUMNS
    assert len(bronze) == 5
    assert (bronze["source"] == "csv_folder").all()
    assert (bronze["ingest_run_id"] == "run-42").all()
    for column in PRICE_COLUMNS:
        assert bronze[column].map(type).eq(str).all(), column
    assert bronze["source_row"].tolist() == [2, 3, 4, 2, 3]


def test_extract_prices_synthetic_is_reproducible_for_a_seed():
    first = bronze_rows({}, _synthetic_source(), {}, UNIVERSE, "run-1")
    second = bronze_rows({}, _synthetic_source(), {}, UNIVERSE, "run-1")
    pd.testing.assert_frame_equal(first, second, check_exact=True)
    other_seed = bronze_rows({}, _synthetic_source(seed=4), {}, UNIVERSE, "run-1")
    assert not first["close"].equals(other_seed["close"])


def test_extract_prices_synthetic_rows_carry_run_id_and_bronze_schema():
    bronze = bronze_rows({}, _synthetic_source(), {}, UNIVERSE, "run-xyz")
    assert list(bronze.columns) == BRONZE_COLUMNS
    assert len(bronze) == 2 * 15
    assert (bronze["ingest_run_id"] == "run-xyz").all()
    assert (bronze["source"] == "synthetic").all()
    assert (bronze["source_file"] == "synthetic(seed=3)").all()
    for column in PRICE_COLUMNS:
        assert bronze[column].map(type).eq(str).all(), column
    assert bronze["date"].iloc[0] == "2024-01-02", "1 Jan is not a Warsaw session"
    assert bronze.groupby("symbol")["source_row"].apply(list).tolist() == [list(range(1, 16))] * 2


def test_extract_prices_synthetic_text_round_trips_to_generated_floats():
    bronze = bronze_rows({}, _synthetic_source(), {}, UNIVERSE, "run-1")
    prices = generate_ohlcv(["AAA", "BBB"], "2024-01-01", 15, 3)
    for column in ["open", "high", "low", "close", "volume"]:
        np.testing.assert_array_equal(bronze[column].astype(float).to_numpy(), prices[column])


def test_extract_prices_synthetic_does_not_load_csv_partitions():
    lazy = {"never_d": _failing_loader}
    bronze = bronze_rows(lazy, _synthetic_source(), {}, UNIVERSE, "run-1")
    assert len(bronze) == 30


def test_extract_prices_rejects_unknown_kind():
    with pytest.raises(ValueError, match=r"ingest.source.kind must be .* got 'ftp'"):
        bronze_rows({}, {"kind": "ftp"}, {}, UNIVERSE, "run-1")


# --- generate_ohlcv -----------------------------------------------------------------------------


def test_generate_ohlcv_is_reproducible_and_seed_dependent():
    a = generate_ohlcv(["AAA", "BBB"], "2024-01-01", 50, seed=1)
    b = generate_ohlcv(["AAA", "BBB"], "2024-01-01", 50, seed=1)
    c = generate_ohlcv(["AAA", "BBB"], "2024-01-01", 50, seed=2)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert not np.allclose(a["close"], c["close"])


def test_generate_ohlcv_prices_are_consistent_and_positive():
    prices = generate_ohlcv(["AAA", "BBB", "CCC"], "2024-01-01", 200, seed=9)
    assert (prices["high"] >= prices[["open", "close"]].max(axis=1)).all()
    assert (prices["low"] <= prices[["open", "close"]].min(axis=1)).all()
    assert (prices[["open", "high", "low", "close"]] > 0).all(axis=None)
    assert (prices["volume"] > 0).all()
    assert (prices["volume"] == prices["volume"].round()).all()


def test_generate_ohlcv_follows_the_exchange_calendar():
    prices = generate_ohlcv(["AAA"], "2023-12-20", 7, seed=0)
    # XWAR: closed 25/26 Dec (Christmas) and 1 Jan (New Year); weekends skipped
    assert prices["date"].dt.strftime("%m-%d").tolist() == [
        "12-20",
        "12-21",
        "12-22",
        "12-27",
        "12-28",
        "12-29",
        "01-02",
    ]


def test_generate_ohlcv_one_row_per_symbol_and_weekday_session():
    prices = generate_ohlcv(["AAA", "BBB"], "2024-01-05", 4, seed=0)  # a Friday
    assert list(prices.columns) == ["symbol", "date", "open", "high", "low", "close", "volume"]
    assert len(prices) == 8
    assert not prices.duplicated(["symbol", "date"]).any()
    expected_dates = pd.to_datetime(["2024-01-05", "2024-01-08", "2024-01-09", "2024-01-10"])
    for symbol in ["AAA", "BBB"]:
        dates = prices.loc[prices.symbol == symbol, "date"]
        assert dates.tolist() == expected_dates.tolist()
    assert prices.equals(prices.sort_values(["symbol", "date"]))


@pytest.mark.parametrize(("symbols", "sessions"), [([], 10), (["AAA"], 0)])
def test_generate_ohlcv_rejects_empty_universe(symbols, sessions):
    with pytest.raises(ValueError, match="at least one symbol and one session"):
        generate_ohlcv(symbols, "2024-01-01", sessions, seed=0)


# --- exchange groups ----------------------------------------------------------------------------


def test_a_disabled_groups_files_are_not_read(partitions, caplog):
    partitions["xyz_d"] = _failing_loader  # must not even be loaded
    universe = {
        "groups": {
            "warsaw": {"calendar": "XWAR", "symbols": ["ABC"]},
            "us_markets": {"calendar": "XNYS", "symbols": ["XYZ"], "enabled": False},
        }
    }
    with caplog.at_level("INFO"):
        bronze = bronze_rows(
            partitions, {"kind": "csv_folder", "csv_format": "v"}, {"v": CSV_CONF}, universe, "r"
        )
    assert set(bronze["symbol"]) == {"ABC"}
    assert "Skipped xyz_d: xyz is in a disabled exchange group" in caplog.text


def test_a_disabled_groups_rows_are_dropped_from_a_long_file_and_counted(caplog):
    frame = pd.concat(
        [
            _vendor_file(["2024-01-02"], 10.0).assign(Ticker="abc"),
            _vendor_file(["2024-01-02", "2024-01-03"], 50.0).assign(Ticker="xyz"),
        ],
        ignore_index=True,
    )
    conf = {"layout": "long", "columns": {**VENDOR_COLUMNS, "Ticker": "symbol"}}
    with caplog.at_level("INFO"):
        bronze = read_csv_partitions({"all": _loader(frame)}, conf, frozenset({"XYZ"}))
    assert bronze["symbol"].tolist() == ["ABC"]
    assert bronze["source_row"].tolist() == [2], "file row numbers survive the filter"
    assert "Skipped 2 rows of all: symbols of disabled exchange groups ['XYZ']" in caplog.text


# --- one run's scope (run.symbols / run.exchange_groups) ----------------------------------------

SCOPED_UNIVERSE = {
    "groups": {
        "warsaw": {"calendar": "XWAR", "symbols": ["ABC", "AAA", "BBB"], "yahoo_suffix": ".WA"},
        "us_markets": {"calendar": "XNYS", "symbols": ["XYZ"]},
    }
}


def test_a_narrowed_run_reads_only_its_scopes_files(partitions, caplog):
    partitions["xyz_d"] = _failing_loader  # in the universe, outside the scope: never loaded
    partitions["zzz_d"] = _failing_loader  # not in the universe: not handed to silver either
    with caplog.at_level("INFO"):
        bronze = bronze_rows(
            partitions,
            {"kind": "csv_folder", "csv_format": "v"},
            {"v": CSV_CONF},
            SCOPED_UNIVERSE,
            "r",
            scope={"symbols": ["abc"]},
        )
    assert set(bronze["symbol"]) == {"ABC"} and len(bronze) == 3
    assert "Skipped xyz_d: xyz is outside this run's scope" in caplog.text
    assert "Skipped zzz_d: zzz is outside this run's scope" in caplog.text


def test_a_narrowed_run_drops_other_symbols_rows_of_a_long_file(caplog):
    frame = pd.concat(
        [
            _vendor_file(["2024-01-02", "2024-01-03"], 10.0).assign(Ticker="abc"),
            _vendor_file(["2024-01-02"], 50.0).assign(Ticker="xyz"),
            _vendor_file(["2024-01-02"], 70.0).assign(Ticker="zzz"),
        ],
        ignore_index=True,
    )
    conf = {"layout": "long", "columns": {**VENDOR_COLUMNS, "Ticker": "symbol"}}
    with caplog.at_level("INFO"):
        bronze = read_csv_partitions({"all": _loader(frame)}, conf, only_symbols=frozenset({"XYZ"}))
    assert bronze[["symbol", "close", "source_row"]].values.tolist() == [["XYZ", "50.0", 4]]
    assert "Skipped 3 rows of all: symbols outside this run's scope ['ABC', 'ZZZ']" in caplog.text


def test_a_narrowed_run_with_no_file_of_its_scope_says_so(partitions):
    with pytest.raises(ValueError, match=r"no files .* for this run's scope \['AAA'\]"):
        read_csv_partitions(partitions, CSV_CONF, only_symbols=frozenset({"AAA"}))


def test_a_narrowed_run_keeps_only_its_scopes_synthetic_rows():
    bronze = bronze_rows(
        {}, _synthetic_source(), {}, SCOPED_UNIVERSE, "r", scope={"exchange_groups": ["warsaw"]}
    )
    assert set(bronze["symbol"]) == {"AAA", "BBB"}  # the generator's symbols in warsaw
    bronze = bronze_rows(
        {}, _synthetic_source(), {}, SCOPED_UNIVERSE, "r", scope={"symbols": "BBB"}
    )
    assert set(bronze["symbol"]) == {"BBB"} and len(bronze) == 15


def test_a_narrowed_run_asks_yahoo_only_for_its_scopes_tickers():
    asked = []

    def fetch(tickers: dict, first: str, last: str) -> pd.DataFrame:
        asked.append((tickers, first, last))
        return pd.DataFrame(
            [
                {"symbol": s, "date": "2024-01-02", **dict.fromkeys(PRICE_COLUMNS[1:], "1")}
                | {"source_file": f"yahoo:{t}", "source_row": 1}
                for s, t in tickers.items()
            ]
        )

    source = {"kind": "yahoo", "yahoo": {"history_start": "2024-01-01"}}
    bronze = bronze_rows(
        {}, source, {}, SCOPED_UNIVERSE, "r", fetch=fetch, scope={"symbols": ["AAA", "XYZ"]}
    )
    assert asked == [({"AAA": "AAA.WA", "XYZ": "XYZ"}, "2024-01-01", "2026-11-23")]
    assert sorted(bronze["symbol"]) == ["AAA", "XYZ"]


def test_a_run_scope_outside_the_universe_stops_the_plan_naming_it():
    stored = pd.DataFrame({"symbol": [], "date": pd.to_datetime([]), "ingest_run_id": []})
    run = {"id": "r", "date": "2024-01-10", "symbols": ["ABC", "NOPE"]}
    with pytest.raises(ValueError, match=r"run.symbols: \['NOPE'\] not in any enabled"):
        plan_ingest(stored, {"mode": "incremental"}, SCOPED_UNIVERSE, run)
