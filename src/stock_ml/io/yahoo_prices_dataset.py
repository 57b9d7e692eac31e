"""Daily prices from Yahoo Finance, as a read-only Kedro dataset that hands out a fetcher.

The live source (``ingest.source.kind: yahoo``) cannot be a plain file dataset: which days to ask
for depends on what the project has already stored, and that is known only inside the ingest
node. Loading this dataset therefore does no I/O at all; it returns a ``YahooPriceFetcher`` and
the node calls it with the window it picked from stored state. The network call still lives in
the I/O layer (this module), not in the node, so nodes stay pure functions of their inputs.

What the fetcher returns is deliberately raw, in the same long text shape as the bundled CSV
sample, so one validation stage judges both sources:

* prices and volume are text, exactly the number Yahoo sent: ``repr(float)`` (the shortest text
  that round-trips the double, e.g. ``160.67999267578125`` for Yahoo's float32-widened prices;
  a whole-number price prints as ``171.0``); volume is an integer and prints as one;
* a null Yahoo sent becomes ``""``, never a dropped row and never a filled value (validation turns
  it into a ``missing_<field>`` quarantine reason). One exception we cannot undo: yfinance 1.7
  zero-fills a null *volume* before we see it, so that arrives as ``"0"``;
* prices are unadjusted (``auto_adjust=False``; Adj Close is not used);
* ``date`` is the session date in the exchange's own timezone (yfinance localises daily bars to
  the exchange's midnight), so a session never shifts a day the way a UTC date can.

yfinance is imported inside the fetcher: every CLI start and Airflow DAG parse builds the catalog,
and neither should pay for importing it.
"""

from __future__ import annotations

import logging
import numbers
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

import pandas as pd
from kedro.io import AbstractDataset, DatasetError

logger = logging.getLogger(__name__)

COLUMNS = ["symbol", "date", "open", "high", "low", "close", "volume", "source_file", "source_row"]
PRICE_FIELDS = {"open": "Open", "high": "High", "low": "Low", "close": "Close", "volume": "Volume"}
RETRY_BACKOFF_SECONDS = 1.0


class YahooPricesDataset(AbstractDataset[None, "YahooPriceFetcher"]):
    """Catalog entry type: stock_ml.io.YahooPricesDataset. Read-only."""

    def __init__(
        self,
        *,
        timeout: float = 30,
        max_retries: int = 3,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """
        Args:
            timeout: seconds yfinance waits for Yahoo's price request.
            max_retries: retries of a ticker after a network error (so ``1 + max_retries``
                attempts), with a doubling backoff from one second.
            metadata: Kedro metadata (e.g. kedro-viz layer); not used by the dataset.
        """
        if max_retries < 0:
            raise DatasetError(f"max_retries must be >= 0, got {max_retries}")
        self._timeout = timeout
        self._max_retries = max_retries
        self.metadata = metadata

    def load(self) -> YahooPriceFetcher:
        return YahooPriceFetcher(timeout=self._timeout, max_retries=self._max_retries)

    def save(self, data: Any) -> None:
        raise DatasetError(
            "YahooPricesDataset is read-only: it fetches prices from Yahoo Finance; "
            "store what it returns through another catalog entry."
        )

    def _describe(self) -> dict[str, Any]:
        return {
            "source": "Yahoo Finance",
            "timeout": self._timeout,
            "max_retries": self._max_retries,
        }


class YahooPriceFetcher:
    """Fetches daily OHLCV for a set of tickers over an inclusive date window."""

    def __init__(
        self,
        *,
        timeout: float = 30,
        max_retries: int = 3,
        backoff_seconds: float = RETRY_BACKOFF_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self._sleep = sleep

    def __call__(self, tickers: dict[str, str], start: Any, end: Any) -> pd.DataFrame:
        """Daily bars of every ticker from ``start`` to ``end``, both inclusive.

        Args:
            tickers: our symbol -> Yahoo ticker, e.g. ``{"PKO": "PKO.WA"}``.
            start: first session date ("YYYY-MM-DD", date or Timestamp).
            end: last session date, inclusive ("YYYY-MM-DD", date or Timestamp).

        Returns:
            One long frame with ``COLUMNS``, sorted by symbol then source_row; empty (with the
            columns) when no session falls in the window. ``source_file`` is
            ``yahoo:<ticker>`` and ``source_row`` the 1-based position of the bar among those
            yfinance returned for that ticker (Yahoo's order; all-null bars are kept).

        Raises:
            ValueError: Yahoo has no such ticker or refused the request; names every such ticker
                with Yahoo's reason (a silently missing ticker would thin the data).
            ConnectionError: a ticker still failed on the network after ``max_retries`` retries.
        """
        first_day, last_day = session_date(start), session_date(end)
        if first_day > last_day or not tickers:
            return empty_prices()
        frames: list[pd.DataFrame] = []
        failures: dict[str, str] = {}
        with yfinance_raising_errors():
            for symbol, yahoo_ticker in tickers.items():
                try:
                    bars = self._daily_bars_with_retries(yahoo_ticker, first_day, last_day)
                except YahooTickerError as error:
                    failures[yahoo_ticker] = error.reason
                    continue
                frames.append(long_rows(symbol, yahoo_ticker, bars))
                logger.info(
                    "Yahoo %s %s..%s: %d sessions", yahoo_ticker, first_day, last_day, len(bars)
                )
        if failures:
            raise ValueError(
                f"Yahoo Finance returned no data for {len(failures)} ticker(s) "
                f"({first_day}..{last_day}): "
                + "; ".join(f"{ticker}: {reason}" for ticker, reason in failures.items())
            )
        return sort_prices(pd.concat([empty_prices(), *frames], ignore_index=True))

    def _daily_bars_with_retries(self, yahoo_ticker: str, first: date, last: date) -> pd.DataFrame:
        attempts = 1 + self.max_retries
        for attempt in range(1, attempts + 1):
            try:
                return daily_bars(yahoo_ticker, first, last, timeout=self.timeout)
            except YahooTickerError:
                raise
            except Exception as error:
                if not is_network_error(error):
                    raise
                if attempt == attempts:
                    raise ConnectionError(
                        f"Yahoo Finance request for {yahoo_ticker} failed after {attempts} "
                        f"attempt(s): {type(error).__name__}: {error}"
                    ) from error
                delay = self.backoff_seconds * 2 ** (attempt - 1)
                logger.warning(
                    "Yahoo %s: %s (attempt %d of %d), retrying in %.1f s",
                    yahoo_ticker,
                    error,
                    attempt,
                    attempts,
                    delay,
                )
                self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover


class YahooTickerError(Exception):
    """Yahoo answered, and the answer is that this ticker has no data for us."""

    def __init__(self, yahoo_ticker: str, reason: str) -> None:
        super().__init__(f"{yahoo_ticker}: {reason}")
        self.reason = reason


def daily_bars(yahoo_ticker: str, first: date, last: date, *, timeout: float) -> pd.DataFrame:
    """yfinance's daily history of one ticker; an empty frame when no session is in the window.

    How yfinance 1.7 tells the cases apart (with ``hide_exceptions`` off):

    * unknown symbol: its timezone lookup fails first. The first two failures in a process fall
      back to the quoteSummary endpoint, which raises ``HTTPError`` 404 ("Quote not found for
      symbol"); later ones raise ``YFTzMissingError`` ("possibly delisted; no timezone found");
    * Yahoo's own error object on the price request (e.g. a delisted symbol whose timezone
      yfinance had cached): ``YFPricesMissingError`` with ``yahoo_reason`` set;
    * a known symbol with no session in the window: ``YFPricesMissingError`` without a Yahoo
      reason (Yahoo sent the symbol's metadata but no timestamps) -> empty frame, not an error.
    """
    import yfinance as yf
    from yfinance.exceptions import YFPricesMissingError, YFTzMissingError

    try:
        return yf.Ticker(yahoo_ticker).history(
            start=first.isoformat(),
            end=(last + timedelta(days=1)).isoformat(),  # yfinance's end is exclusive
            interval="1d",
            auto_adjust=False,
            actions=False,
            prepost=False,
            repair=False,
            keepna=True,  # keep Yahoo's all-null bars: validation quarantines them
            rounding=False,
            timeout=timeout,
        )
    except YFTzMissingError as error:
        raise YahooTickerError(yahoo_ticker, f"unknown to Yahoo ({error.rationale})") from error
    except YFPricesMissingError as error:
        if error.yahoo_reason is None:
            return pd.DataFrame(columns=list(PRICE_FIELDS.values()))
        raise YahooTickerError(yahoo_ticker, error.yahoo_reason) from error
    except Exception as error:
        if http_status(error) == 404:
            raise YahooTickerError(yahoo_ticker, yahoo_error_description(error)) from error
        raise


def is_network_error(error: BaseException) -> bool:
    """Worth retrying: the request did not get a usable answer (transport, timeout, 429, 5xx)."""
    from yfinance.exceptions import YFRateLimitError

    return isinstance(error, (OSError, TimeoutError, YFRateLimitError))


def http_status(error: BaseException) -> int | None:
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None)


def yahoo_error_description(error: BaseException) -> str:
    """Yahoo's ``{"<endpoint>": {"error": {"description": ...}}}`` text, else the HTTP status."""
    response = error.response  # type: ignore[attr-defined]
    try:
        document = response.json()
        return next(
            body["error"]["description"]
            for body in document.values()
            if isinstance(body, dict) and body.get("error")
        )
    except Exception:
        return f"HTTP {response.status_code}"


@contextmanager
def yfinance_raising_errors() -> Iterator[None]:
    """Make yfinance raise instead of logging and returning an empty frame.

    By default yfinance hides errors, and a network failure during its timezone lookup then reads
    as "possibly delisted". ``hide_exceptions`` is process-wide config; it is restored on exit.
    """
    import yfinance as yf

    hidden = yf.config.debug.hide_exceptions
    yf.config.debug.hide_exceptions = False
    try:
        yield
    finally:
        yf.config.debug.hide_exceptions = hidden


def long_rows(symbol: str, yahoo_ticker: str, bars: pd.DataFrame) -> pd.DataFrame:
    """yfinance's frame (one row per session, exchange-local index) as our long text rows."""
    rows = pd.DataFrame(
        {
            "symbol": symbol,
            "date": [session.strftime("%Y-%m-%d") for session in bars.index],
            **{
                field: [number_text(value) for value in bars[column]]
                for field, column in PRICE_FIELDS.items()
            },
            "source_file": f"yahoo:{yahoo_ticker}",
            "source_row": range(1, len(bars) + 1),
        },
        columns=COLUMNS,
    )
    return rows.astype({"source_row": "int64"})


def number_text(value: Any) -> str:
    """Yahoo's number as text: integers as integers, floats by ``repr``, null as ``""``."""
    if value is None or pd.isna(value):
        return ""
    if isinstance(value, numbers.Integral):
        return str(int(value))
    return repr(float(value))


def session_date(value: Any) -> date:
    """A date from "YYYY-MM-DD", a date or a Timestamp (its own calendar day, no tz shift)."""
    return pd.Timestamp(value).date()


def empty_prices() -> pd.DataFrame:
    frame = pd.DataFrame({column: pd.Series(dtype=object) for column in COLUMNS})
    return frame.astype({"source_row": "int64"})


def sort_prices(prices: pd.DataFrame) -> pd.DataFrame:
    ordered = prices.sort_values(["symbol", "source_row"], kind="stable")
    return ordered.reset_index(drop=True).astype({"source_row": "int64"})
