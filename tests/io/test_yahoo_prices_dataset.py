"""YahooPricesDataset against replayed Yahoo responses (the replay: tests/yahoo_replay.py)."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from curl_cffi.requests.exceptions import ConnectionError as CurlConnectionError
from kedro.io import DataCatalog, DatasetError

from stock_ml.io import YahooPriceFetcher, YahooPricesDataset
from stock_ml.io.yahoo_prices_dataset import COLUMNS
from tests.yahoo_replay import UnexpectedRequest, YahooReplay

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "01_raw" / "wig20"
WARSAW = ZoneInfo("Europe/Warsaw")
PKO_KGH = {"PKO": "PKO.WA", "KGH": "KGH.WA"}
CHART_PKO = "https://query2.finance.yahoo.com/v8/finance/chart/PKO.WA"


def fetcher(**kwargs) -> YahooPriceFetcher:
    return YahooPriceFetcher(sleep=lambda seconds: None, **kwargs)


def sample_rows(file_name: str, month: str = "2022-03") -> list[dict[str, str]]:
    with (SAMPLE / file_name).open(newline="") as handle:
        return [row for row in csv.DictReader(handle) if row["Data"].startswith(month)]


def yahoo_float32_text(sample_text: str) -> str:
    """How the KGH fixture carries a sample price: widened through float32, as Yahoo sends it."""
    return repr(float(np.float32(float(sample_text))))


def warsaw_midnight_epoch(day: str) -> str:
    return str(int(datetime.fromisoformat(day).replace(tzinfo=WARSAW).timestamp()))


# --- the dataset -------------------------------------------------------------------------------


def test_load_returns_a_fetcher_without_touching_the_network(yahoo: YahooReplay) -> None:
    fetch = YahooPricesDataset(timeout=5, max_retries=1).load()

    assert isinstance(fetch, YahooPriceFetcher)
    assert (fetch.timeout, fetch.max_retries) == (5, 1)
    assert yahoo.requests == []


def test_catalog_type_path_resolves_to_the_dataset(yahoo: YahooReplay) -> None:
    catalog = DataCatalog.from_config({"yahoo_prices": {"type": "stock_ml.io.YahooPricesDataset"}})

    assert isinstance(catalog.load("yahoo_prices"), YahooPriceFetcher)
    assert yahoo.requests == []


def test_save_is_refused_as_read_only() -> None:
    with pytest.raises(DatasetError, match="read-only"):
        YahooPricesDataset().save(pd.DataFrame())


# --- a month of two Warsaw tickers -------------------------------------------------------------


@pytest.fixture
def march(yahoo: YahooReplay) -> pd.DataFrame:
    return fetcher()(PKO_KGH, "2022-03-01", "2022-03-31")


def test_month_has_every_session_of_both_tickers_in_order(march: pd.DataFrame) -> None:
    assert list(march.columns) == COLUMNS
    assert march.groupby("symbol").size().to_dict() == {"KGH": 23, "PKO": 23}
    assert list(march["symbol"]) == ["KGH"] * 23 + ["PKO"] * 23
    assert list(march["source_row"]) == list(range(1, 24)) * 2
    assert set(march["source_file"]) == {"yahoo:KGH.WA", "yahoo:PKO.WA"}
    assert (march["source_file"] == "yahoo:" + march["symbol"] + ".WA").all()


def test_dates_are_warsaw_session_dates_across_the_dst_change(march: pd.DataFrame) -> None:
    """Bars are stamped 09:00 Warsaw; 2022-03-27 moved Warsaw from UTC+1 to UTC+2."""
    for symbol, file_name in (("PKO", "pko_d.csv"), ("KGH", "kgh_d.csv")):
        dates = list(march.loc[march["symbol"] == symbol, "date"])
        assert dates == [row["Data"] for row in sample_rows(file_name)]
    assert {"2022-03-01", "2022-03-25", "2022-03-28", "2022-03-31"} <= set(march["date"])


def test_prices_are_the_numbers_yahoo_sent_as_text(march: pd.DataFrame) -> None:
    pko = march[march["symbol"] == "PKO"].set_index("date")
    assert pko.loc["2022-03-01", ["open", "high", "low", "close", "volume"]].tolist() == [
        "37.5636",
        "38.3269",
        "35.1059",
        "35.1059",
        "10180143",
    ]
    kgh = march[march["symbol"] == "KGH"].set_index("date")
    assert kgh.loc["2022-03-01", ["open", "high", "low", "close", "volume"]].tolist() == [
        "161.64999389648438",
        "166.94200134277344",
        "156.55299377441406",
        "161.31100463867188",
        "957778",
    ]
    for row in sample_rows("pko_d.csv"):
        got = pko.loc[row["Data"]]
        expected_close = "" if row["Data"] == "2022-03-15" else row["Zamkniecie"]
        assert [got["open"], got["high"], got["low"], got["close"]] == [
            row["Otwarcie"],
            row["Najwyzszy"],
            row["Najnizszy"],
            expected_close,
        ]
        assert got["volume"] == str(round(float(row["Wolumen"])))
    for row in sample_rows("kgh_d.csv"):
        if row["Data"] != "2022-03-22":
            assert kgh.loc[row["Data"], "high"] == yahoo_float32_text(row["Najwyzszy"])


def test_a_null_price_is_empty_text_and_its_row_is_kept(march: pd.DataFrame) -> None:
    row = march[(march["symbol"] == "PKO") & (march["date"] == "2022-03-15")].iloc[0]

    assert row["close"] == ""
    assert [row["open"], row["high"], row["low"], row["volume"]] == [
        "34.4356",
        "35.5993",
        "34.0353",
        "2889163",
    ]
    assert row["source_row"] == 11


def test_an_all_null_bar_is_kept_and_null_volume_arrives_zero_filled(march: pd.DataFrame) -> None:
    """yfinance 1.7 fills a null volume with 0 before we see it (history.py, fillna(0))."""
    row = march[(march["symbol"] == "KGH") & (march["date"] == "2022-03-22")].iloc[0]

    assert [row["open"], row["high"], row["low"], row["close"]] == ["", "", "", ""]
    assert row["volume"] == "0"
    assert row["source_row"] == 16


def test_text_columns_are_str(march: pd.DataFrame) -> None:
    text_columns = [column for column in COLUMNS if column != "source_row"]
    assert all(isinstance(value, str) for value in march[text_columns].to_numpy().ravel())
    assert march["source_row"].dtype == "int64"


# --- the window --------------------------------------------------------------------------------


def test_end_date_is_inclusive(yahoo: YahooReplay) -> None:
    prices = fetcher()({"PKO": "PKO.WA"}, pd.Timestamp("2022-03-30"), pd.Timestamp("2022-03-31"))

    assert list(prices["date"]) == ["2022-03-30", "2022-03-31"]
    assert list(prices["close"]) == ["37.8894", "37.0888"]
    window = [query for query in yahoo.requests_to(CHART_PKO) if "period1" in query]
    assert window == [
        {
            "period1": warsaw_midnight_epoch("2022-03-30"),
            "period2": warsaw_midnight_epoch("2022-04-01"),
            "interval": "1d",
            "includePrePost": "False",
            "events": "div,splits,capitalGains",
            "crumb": "cJ4u2NgPAkX",
        }
    ]


def test_a_window_without_sessions_is_an_empty_frame_not_an_error(yahoo: YahooReplay) -> None:
    prices = fetcher()({"PKO": "PKO.WA"}, "2022-03-05", "2022-03-06")  # Saturday, Sunday

    assert prices.empty
    assert list(prices.columns) == COLUMNS
    assert any("period1" in query for query in yahoo.requests_to(CHART_PKO))


def test_start_after_end_is_empty_without_asking_yahoo(yahoo: YahooReplay) -> None:
    prices = fetcher()(PKO_KGH, "2022-03-31", "2022-03-01")

    assert prices.empty
    assert list(prices.columns) == COLUMNS
    assert yahoo.requests == []


# --- Yahoo has no data for a ticker ------------------------------------------------------------


@pytest.mark.parametrize(
    ("earlier_failed_lookups", "reason"),
    [
        (0, "Quote not found for symbol: XYZ.WA"),  # yfinance's quoteSummary fallback
        (2, "unknown to Yahoo (no timezone found)"),  # fallback used up: YFTzMissingError
    ],
    ids=["quote_summary_fallback", "timezone_missing"],
)
def test_an_unknown_ticker_raises_naming_it_and_the_reason(
    yahoo: YahooReplay, monkeypatch: pytest.MonkeyPatch, earlier_failed_lookups: int, reason: str
) -> None:
    import yfinance.base

    monkeypatch.setattr(yfinance.base, "_tz_info_fetch_ctr", earlier_failed_lookups)

    with pytest.raises(ValueError, match="XYZ.WA") as raised:
        fetcher()({"XYZ": "XYZ.WA"}, "2022-03-01", "2022-03-31")

    assert reason in str(raised.value)
    assert yahoo.requests_to("https://query2.finance.yahoo.com/v8/finance/chart/XYZ.WA")


def test_every_failed_ticker_is_named_and_good_ones_do_not_hide_them(yahoo: YahooReplay) -> None:
    tickers = {"XYZ": "XYZ.WA", "PKO": "PKO.WA", "QQQQ": "QQQQ.WA"}

    with pytest.raises(ValueError, match="2 ticker") as raised:
        fetcher()(tickers, "2022-03-01", "2022-03-31")

    message = str(raised.value)
    assert "XYZ.WA: Quote not found for symbol: XYZ.WA" in message
    assert "QQQQ.WA: Quote not found for symbol: QQQQ.WA" in message
    assert "PKO.WA" not in message


def test_a_delisted_ticker_with_a_cached_timezone_reports_yahoos_reason(
    yahoo: YahooReplay, monkeypatch: pytest.MonkeyPatch
) -> None:
    """yfinance skips its timezone lookup for a ticker in its tz cache; Yahoo's error then shows."""
    import yfinance.cache

    class CachedWarsaw(yfinance.cache._TzCacheDummy):
        def lookup(self, tkr: str) -> str:
            return "Europe/Warsaw"

    monkeypatch.setattr(yfinance.cache._TzCacheManager, "_tz_cache", CachedWarsaw())

    with pytest.raises(ValueError, match="XYZ.WA: No data found, symbol may be delisted"):
        fetcher()({"XYZ": "XYZ.WA"}, "2022-03-01", "2022-03-31")


# --- the network -------------------------------------------------------------------------------


def test_a_network_error_is_retried_after_a_backoff(yahoo: YahooReplay) -> None:
    reset = CurlConnectionError("Connection reset by peer")
    yahoo.fail(CHART_PKO, reset, times=1, period1=warsaw_midnight_epoch("2022-03-01"))
    sleeps: list[float] = []
    fetch = YahooPriceFetcher(max_retries=3, backoff_seconds=0.5, sleep=sleeps.append)

    prices = fetch({"PKO": "PKO.WA"}, "2022-03-01", "2022-03-31")

    assert len(prices) == 23
    assert sleeps == [0.5]
    assert len([q for q in yahoo.requests_to(CHART_PKO) if "period1" in q]) == 2


def test_gives_up_after_max_retries_naming_the_ticker(yahoo: YahooReplay) -> None:
    yahoo.fail(CHART_PKO, CurlConnectionError("Could not resolve host"))
    sleeps: list[float] = []
    fetch = YahooPriceFetcher(max_retries=2, backoff_seconds=1.0, sleep=sleeps.append)

    with pytest.raises(ConnectionError, match=r"PKO\.WA failed after 3 attempt"):
        fetch({"PKO": "PKO.WA"}, "2022-03-01", "2022-03-31")

    assert sleeps == [1.0, 2.0]
    assert len(yahoo.requests_to(CHART_PKO)) == 3


def test_yfinance_error_setting_is_restored_after_a_failure(yahoo: YahooReplay) -> None:
    import yfinance as yf

    with pytest.raises(ValueError):
        fetcher()({"XYZ": "XYZ.WA"}, "2022-03-01", "2022-03-31")

    assert yf.config.debug.hide_exceptions is True


def test_an_unrecorded_request_fails_loudly(yahoo: YahooReplay) -> None:
    with pytest.raises(UnexpectedRequest):
        fetcher()({"PKO": "PKO.WA"}, "2022-02-01", "2022-02-28")  # no recording of February

    assert yahoo.unexpected
    yahoo.unexpected.clear()  # seen and expected here; the fixture would fail the test otherwise
