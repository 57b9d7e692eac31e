"""Build the replayed Yahoo Finance responses in this folder from the bundled WIG20 sample.

There is no internet where this project is developed, so these are not captures: they are the
responses Yahoo's endpoints give, in Yahoo's exact shape, filled with the real prices of
``data/01_raw/wig20/{pko,kgh}_d.csv`` for March 2022. README.md says what is real and what is
made up. Re-run from the project root after changing anything here:

    .venv/bin/python tests/data/yahoo/build_fixtures.py
"""

from __future__ import annotations

import csv
import json
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

HERE = Path(__file__).resolve().parent
SAMPLE = HERE.parents[2] / "data" / "01_raw" / "wig20"
WARSAW = ZoneInfo("Europe/Warsaw")

CHART_URL = "https://query2.finance.yahoo.com/v8/finance/chart/{ticker}"
QUOTE_SUMMARY_URL = "https://query2.finance.yahoo.com/v10/finance/quoteSummary/{ticker}"
CRUMB = "cJ4u2NgPAkX"
JSON_HEADERS = {"Content-Type": "application/json;charset=utf-8"}
HTML_HEADERS = {"Content-Type": "text/html; charset=utf-8"}

# The month every test reads, and the session after it: the replay pretends the responses were
# fetched on the evening of 2022-04-01, so "current" metadata describes that session.
MONTH_START, MONTH_END = date(2022, 3, 1), date(2022, 3, 31)
AS_OF = date(2022, 4, 1)

# Prices as Yahoo serialises them: KGH's pass through float32 first (Yahoo's chart API prints
# e.g. 160.67999267578125 for 160.68); PKO's keep the sample's own decimal text.
TICKERS = {
    "PKO.WA": {
        "file": "pko_d.csv",
        "float32": False,
        "longName": "Powszechna Kasa Oszczednosci Bank Polski Spólka Akcyjna",
        "shortName": "PKOBP",
        "firstTradeDate": date(2004, 11, 10),
    },
    "KGH.WA": {
        "file": "kgh_d.csv",
        "float32": True,
        "longName": "KGHM Polska Miedz S.A.",
        "shortName": "KGHM",
        "firstTradeDate": date(1997, 7, 10),
    },
}
# Yahoo does send nulls: one price of one PKO session; a whole KGH session (a suspension-like bar).
NULLS = {
    ("PKO.WA", "2022-03-15"): ("close",),
    ("KGH.WA", "2022-03-22"): ("open", "high", "low", "close", "volume"),
}
UNKNOWN_TICKERS = ("XYZ.WA", "QQQQ.WA")
QUOTE_SUMMARY_MODULES = [
    "financialData",
    "quoteType",
    "defaultKeyStatistics",
    "assetProfile",
    "summaryDetail",
]
VALID_RANGES = ["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max"]


def warsaw_epoch(day: date, at: time) -> int:
    return int(datetime.combine(day, at, tzinfo=WARSAW).timestamp())


def read_sample(file_name: str) -> dict[date, dict[str, float]]:
    with (SAMPLE / file_name).open(newline="") as handle:
        return {
            date.fromisoformat(row["Data"]): {
                "open": float(row["Otwarcie"]),
                "high": float(row["Najwyzszy"]),
                "low": float(row["Najnizszy"]),
                "close": float(row["Zamkniecie"]),
                "volume": float(row["Wolumen"]),
            }
            for row in csv.DictReader(handle)
        }


def as_yahoo_price(value: float, float32: bool) -> float:
    return float(np.float32(value)) if float32 else value


def session_bar(ticker: str, day: date, values: dict[str, float]) -> dict[str, float | int | None]:
    float32 = TICKERS[ticker]["float32"]
    bar: dict[str, float | int | None] = {
        field: as_yahoo_price(values[field], float32) for field in ("open", "high", "low", "close")
    }
    bar["volume"] = round(values["volume"])  # Yahoo sends whole shares
    for field in NULLS.get((ticker, day.isoformat()), ()):
        bar[field] = None
    return bar


def trading_period(day: date, start: time, end: time) -> dict[str, object]:
    offset = int(datetime.combine(day, start, tzinfo=WARSAW).utcoffset().total_seconds())
    return {
        "timezone": datetime.combine(day, start, tzinfo=WARSAW).tzname(),
        "start": warsaw_epoch(day, start),
        "end": warsaw_epoch(day, end),
        "gmtoffset": offset,
    }


def meta(ticker: str, sample: dict[date, dict[str, float]], first_day: date, range_: str):
    info = TICKERS[ticker]
    float32 = info["float32"]
    today = sample[AS_OF]
    year_before = [v for d, v in sample.items() if AS_OF - timedelta(days=365) < d <= AS_OF]
    previous = max(d for d in sample if d < first_day)
    offset = trading_period(AS_OF, time(9), time(17))
    body = {
        "currency": "PLN",
        "symbol": ticker,
        "exchangeName": "WSE",
        "fullExchangeName": "Warsaw",
        "instrumentType": "EQUITY",
        "firstTradeDate": warsaw_epoch(info["firstTradeDate"], time(9)),
        "regularMarketTime": warsaw_epoch(AS_OF, time(16, 59, 57)),
        "hasPrePostMarketData": False,
        "gmtoffset": offset["gmtoffset"],
        "timezone": offset["timezone"],
        "exchangeTimezoneName": "Europe/Warsaw",
        "regularMarketPrice": as_yahoo_price(today["close"], float32),
        "fiftyTwoWeekHigh": as_yahoo_price(max(v["high"] for v in year_before), float32),
        "fiftyTwoWeekLow": as_yahoo_price(min(v["low"] for v in year_before), float32),
        "regularMarketDayHigh": as_yahoo_price(today["high"], float32),
        "regularMarketDayLow": as_yahoo_price(today["low"], float32),
        "regularMarketVolume": round(today["volume"]),
        "longName": info["longName"],
        "shortName": info["shortName"],
        "chartPreviousClose": as_yahoo_price(sample[previous]["close"], float32),
        "priceHint": 2,
        "currentTradingPeriod": {
            "pre": trading_period(AS_OF, time(8, 30), time(9)),
            "regular": offset,
            "post": trading_period(AS_OF, time(17), time(17, 5)),
        },
        "dataGranularity": "1d",
        "range": range_,
        "validRanges": VALID_RANGES,
    }
    return body


def chart(ticker, sample, first: date, days: list[date], range_: str) -> dict[str, object]:
    """Yahoo's v8 chart document for ``days`` (an empty list gives Yahoo's empty-window shape)."""
    result: dict[str, object] = {"meta": meta(ticker, sample, first, range_)}
    if days:
        bars = [session_bar(ticker, day, sample[day]) for day in days]
        result["timestamp"] = [warsaw_epoch(day, time(9)) for day in days]
        result["indicators"] = {
            "quote": [{field: [bar[field] for bar in bars] for field in bars[0]}],
            "adjclose": [{"adjclose": [bar["close"] for bar in bars]}],
        }
    else:
        result["indicators"] = {"quote": [{}], "adjclose": [{}]}
    return {"chart": {"result": [result], "error": None}}


def chart_not_found() -> dict[str, object]:
    description = "No data found, symbol may be delisted"
    return {"chart": {"result": None, "error": {"code": "Not Found", "description": description}}}


def quote_summary_not_found(ticker: str) -> dict[str, object]:
    description = f"Quote not found for symbol: {ticker}"
    return {
        "quoteSummary": {"result": None, "error": {"code": "Not Found", "description": description}}
    }


def window_params(first: date, last: date) -> dict[str, str]:
    """The query yfinance 1.7 sends for history(start=first, end=last + 1 day) on a .WA ticker."""
    return {
        "period1": str(warsaw_epoch(first, time(0))),
        "period2": str(warsaw_epoch(last + timedelta(days=1), time(0))),
        "interval": "1d",
        "includePrePost": "False",
        "events": "div,splits,capitalGains",
        "crumb": CRUMB,
    }


TZ_LOOKUP_PARAMS = {"range": "1d", "interval": "1d", "crumb": CRUMB}


class Cassette:
    def __init__(self) -> None:
        self.interactions: list[dict[str, object]] = []

    def add(self, url, params, *, status, headers, body_file, body, note):
        path = HERE / body_file
        if isinstance(body, str):
            path.write_text(body, encoding="utf-8")
        else:
            path.write_text(json.dumps(body, separators=(",", ":"), ensure_ascii=False) + "\n")
        self.interactions.append(
            {
                "note": note,
                "request": {"method": "GET", "url": url, "params": params},
                "response": {"status": status, "headers": headers, "body_file": body_file},
            }
        )

    def write(self) -> None:
        document = {"crumb": CRUMB, "interactions": self.interactions}
        (HERE / "cassette.json").write_text(json.dumps(document, indent=2) + "\n")


def main() -> None:
    cassette = Cassette()
    cassette.add(
        "https://fc.yahoo.com",
        {},
        status=404,
        headers=HTML_HEADERS,
        body_file="fc.yahoo.com.html",
        body="<!doctype html><html><head><title>Yahoo</title></head><body>404</body></html>\n",
        note="cookie bootstrap (basic strategy): Yahoo answers 404 and sets the A3 cookie",
    )
    cassette.add(
        "https://query1.finance.yahoo.com/v1/test/getcrumb",
        {},
        status=200,
        headers={"Content-Type": "text/plain;charset=utf-8"},
        body_file="getcrumb.txt",
        body=CRUMB,
        note="crumb for the basic cookie strategy",
    )
    cassette.add(
        "https://guce.yahoo.com/consent",
        {},
        status=200,
        headers=HTML_HEADERS,
        body_file="guce_consent.html",
        body="<!doctype html><html><head><title>Yahoo</title></head><body></body></html>\n",
        note="csrf cookie strategy, tried after any HTTP >= 400: no consent form outside the EU",
    )
    for ticker, info in TICKERS.items():
        sample = read_sample(info["file"])
        month = sorted(d for d in sample if MONTH_START <= d <= MONTH_END)
        windows = {f"{MONTH_START:%Y-%m}": (MONTH_START, MONTH_END, month)}
        if ticker == "PKO.WA":
            windows["2022-03-30_31"] = (date(2022, 3, 30), date(2022, 3, 31), month[-2:])
            windows["2022-03-05_06_weekend"] = (date(2022, 3, 5), date(2022, 3, 6), [])
        cassette.add(
            CHART_URL.format(ticker=ticker),
            TZ_LOOKUP_PARAMS,
            status=200,
            headers=JSON_HEADERS,
            body_file=f"chart_{ticker}_range1d.json",
            body=chart(ticker, sample, AS_OF, [AS_OF], "1d"),
            note="timezone lookup yfinance makes before any start/end request",
        )
        for label, (first, last, days) in windows.items():
            cassette.add(
                CHART_URL.format(ticker=ticker),
                window_params(first, last),
                status=200,
                headers=JSON_HEADERS,
                body_file=f"chart_{ticker}_{label}.json",
                body=chart(ticker, sample, first, days, ""),
                note=f"daily bars {first}..{last} (end inclusive)",
            )
    for ticker in UNKNOWN_TICKERS:
        cassette.add(
            CHART_URL.format(ticker=ticker),
            TZ_LOOKUP_PARAMS,
            status=404,
            headers=JSON_HEADERS,
            body_file=f"chart_{ticker}_404.json",
            body=chart_not_found(),
            note="unknown symbol: timezone lookup",
        )
        cassette.add(
            CHART_URL.format(ticker=ticker),
            window_params(MONTH_START, MONTH_END),
            status=404,
            headers=JSON_HEADERS,
            body_file=f"chart_{ticker}_404.json",
            body=chart_not_found(),
            note="unknown symbol whose timezone yfinance had cached: the window request itself",
        )
        cassette.add(
            QUOTE_SUMMARY_URL.format(ticker=ticker),
            {
                "modules": ",".join(QUOTE_SUMMARY_MODULES),
                "corsDomain": "finance.yahoo.com",
                "formatted": "false",
                "symbol": ticker,
                "lang": "en-US",
                "region": "US",
                "crumb": CRUMB,
            },
            status=404,
            headers=JSON_HEADERS,
            body_file=f"quoteSummary_{ticker}_404.json",
            body=quote_summary_not_found(ticker),
            note="yfinance's timezone fallback (first two failed lookups per process)",
        )
    cassette.write()


if __name__ == "__main__":
    main()
