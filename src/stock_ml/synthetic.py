"""Seeded synthetic OHLCV universe, with optional regime shifts and injected defects.

Tests and the test env need prices that look like a market (random-walk closes with drift and
volatility per symbol, consistent OHLC, positive volume) without shipping data. Same seed, same
prices. Sessions are those of a real exchange calendar, so silver's session check holds.

Three steps, each usable on its own:

- ``generate_ohlcv``: numeric prices (floats, datetime dates), optionally with regime shifts;
- ``render_text``: those prices as text, the way ingest's synthetic source writes bronze;
- ``inject_defects``: known defects in such a text frame, with a ground-truth table of what was
  injected and what silver validation is expected to make of it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stock_ml.calendars import sessions_from

PRICE_FIELDS = ["open", "high", "low", "close", "volume"]
OHLC_FIELDS = ["open", "high", "low", "close"]
REGIME_KEYS = {"start", "drift", "vol_multiplier", "symbols"}


def generate_ohlcv(
    symbols: list[str],
    start: str,
    sessions: int,
    seed: int,
    *,
    calendar: str = "XWAR",
    daily_vol: float = 0.02,
    regimes: list[dict] | None = None,
) -> pd.DataFrame:
    """Return long-format OHLCV (symbol, date, open, high, low, close, volume), sorted.

    Each symbol draws its own drift and volatility, then a daily log-return per session; the close
    is a random walk, open/high/low scatter around it with the symbol's volatility.

    ``regimes`` (optional) shift the market from a date on. Each regime is a dict:

    ==================  ==========================================================================
    ``start``           "YYYY-MM-DD"; the regime holds from the first session on or after it
    ``drift``           daily log-return drift from then on, replacing the symbol's own drift
                        (omitted: the symbol keeps its own drift)
    ``vol_multiplier``  > 0; the symbol's own volatility times this, for the close's log-returns
                        and for the open/high/low scatter alike (omitted: 1). Volume is unchanged.
    ``symbols``         the symbols it applies to (omitted: all)
    ==================  ==========================================================================

    A regime replaces whatever held before it for its symbols (multipliers do not compound);
    regimes apply in order of ``start``, and of the list for equal starts.

    Randomness is drawn the same way with or without regimes (the same standard-normal shocks,
    only rescaled from a regime's start on), so prices before a regime's start, and every price of a
    symbol no regime applies to, are exactly those of the run without regimes. With
    ``regimes=None`` the output is that of the generator before regimes existed.
    """
    if sessions < 1 or not symbols:
        raise ValueError(f"need at least one symbol and one session, got {symbols!r}, {sessions}")
    rng = np.random.default_rng(seed)
    dates = sessions_from(calendar, start, sessions)
    shifts = _regime_shifts(regimes or [], symbols, dates)
    frames = []
    for symbol in symbols:
        drift = rng.normal(0.0003, 0.0005)
        vol = daily_vol * rng.uniform(0.6, 1.4)
        # Per-session drift and volatility: constant unless a regime shifts them. numpy applies
        # loc + scale * z elementwise with the same arithmetic for scalars and arrays, so sessions
        # before a regime get bit-identical values.
        drift_t = np.full(sessions, drift)
        vol_t = np.full(sessions, vol)
        for first, regime in shifts.get(symbol, []):
            drift_t[first:] = regime.get("drift", drift)
            vol_t[first:] = vol * float(regime.get("vol_multiplier", 1.0))
        log_returns = rng.normal(drift_t, vol_t)
        close = 100.0 * rng.uniform(0.2, 5.0) * np.exp(np.cumsum(log_returns))
        open_ = close * np.exp(rng.normal(0.0, vol_t / 3))
        spread = np.abs(rng.normal(0.0, vol_t / 2))
        high = np.maximum(open_, close) * (1.0 + spread)
        low = np.minimum(open_, close) * (1.0 - spread)
        volume = np.round(rng.lognormal(mean=11.0, sigma=0.5, size=sessions))
        frames.append(
            pd.DataFrame(
                {
                    "symbol": symbol,
                    "date": dates,
                    "open": open_,
                    "high": high,
                    "low": low,
                    "close": close,
                    "volume": volume,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _regime_shifts(
    regimes: list[dict], symbols: list[str], dates: pd.DatetimeIndex
) -> dict[str, list[tuple[int, dict]]]:
    """Symbol → [(index of the first session of the regime, regime)], in order of application."""
    checked = []
    for number, regime in enumerate(regimes):
        unknown = set(regime) - REGIME_KEYS
        if unknown or "start" not in regime:
            raise ValueError(
                f"regime {number}: needs 'start' and only keys {sorted(REGIME_KEYS)}, "
                f"got {sorted(regime)}"
            )
        if float(regime.get("vol_multiplier", 1.0)) <= 0:
            raise ValueError(f"regime {number}: vol_multiplier must be > 0, got {regime}")
        targets = list(regime.get("symbols", symbols))
        strangers = sorted(set(targets) - set(symbols))
        if strangers:
            raise ValueError(f"regime {number}: symbols {strangers} are not generated")
        start = pd.Timestamp(regime["start"])
        checked.append((start, int(dates.searchsorted(start, "left")), targets, regime))
    shifts: dict[str, list[tuple[int, dict]]] = {}
    for _, first, targets, regime in sorted(checked, key=lambda c: c[0]):  # stable: list order
        for symbol in targets:
            shifts.setdefault(symbol, []).append((first, regime))
    return shifts


def render_text(prices: pd.DataFrame) -> pd.DataFrame:
    """Prices as bronze text: values as ``str(float)``, dates as "YYYY-MM-DD".

    Exactly what ingest's synthetic source writes, so bronze built either way is the same.
    """
    text = prices.astype({c: str for c in PRICE_FIELDS})
    text["date"] = prices["date"].dt.strftime("%Y-%m-%d")
    return text


# Defect kind → primary quarantine reason silver's validate_prices gives the defective row
# (None: the row is not quarantined; the outcome is elsewhere, see inject_defects).
DEFECTS: dict[str, str | None] = {
    "exact_duplicates": None,
    "conflicting_duplicates": "duplicate_key",
    "gaps": None,
    "bad_ohlc": "inconsistent_ohlc",
    "nan_prices": "missing_<field>",
    "negative_prices": "non_positive_price",
    "negative_volume": "negative_volume",
    "stale_series": None,
}
ROW_DEFECTS = [kind for kind in DEFECTS if kind != "stale_series"]
ADDS_ROW = {"exact_duplicates", "conflicting_duplicates"}
TRUTH_COLUMNS = ["symbol", "date", "defect", "expected_reason"]


def inject_defects(
    prices: pd.DataFrame, defects: dict, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Inject known defects into a bronze-like text frame; return (frame, ground truth).

    ``prices`` has text columns symbol, date ("YYYY-MM-DD"), open, high, low, close, volume (as
    ``render_text`` writes them); any other column (lineage, ...) is carried through, and rows
    added by a defect copy it from the row they derive from. ``prices`` is not modified.

    ``defects`` maps a kind to a count (0 or absent: none):

    ======================  =================================  ===================================
    key                     what is done                       expected outcome in silver
    ======================  =================================  ===================================
    exact_duplicates        a row is copied verbatim, the      not quarantined: counted in
                            copy right after it                ``exact_duplicates``; silver keeps
                                                               one row
    conflicting_duplicates  a second row for the same          the earlier-read row (the
                            (symbol, date) right after it,     original) is quarantined as
                            close moved to mid(low, high)      ``duplicate_key``; the later one
                            (still a consistent OHLC row)      wins, as a vendor's correction
    gaps                    a session's row is removed         one more ``missing_sessions`` in
                                                               data health
    bad_ohlc                high set below max(open, close)    ``inconsistent_ohlc``
    nan_prices              one of open/high/low/close is ""   ``missing_<field>``
    negative_prices         one of open/high/low/close is      ``non_positive_price``
                            made negative
    negative_volume         volume made negative               ``negative_volume``
    stale_series            that many symbols lose their last  data-health status ``stale`` when
                            ``stale_sessions`` (default 5)     ``max_sessions_behind`` <
                            sessions                           ``stale_sessions`` and the run date
                                                               is the last generated session
    ======================  =================================  ===================================

    Rows are drawn with ``seed`` (same frame, defects and seed: same result), no row is hit by two
    defects, and no defect hits a symbol's first or last remaining session. So every gap and every
    row quarantined for a reason other than ``duplicate_key`` leaves exactly one missing session
    in data health, and only ``stale_series`` changes a symbol's freshness.

    The truth table has one row per defect: symbol, date (text, as in the frame), defect (the key)
    and expected_reason, the primary quarantine reason (None for exact_duplicates, gaps and
    stale_series, whose rows are not quarantined; stale_series has one row per removed session).
    It is sorted by symbol, date, defect. The returned frame keeps the input's row order, with
    removed rows left out and added rows right after the row they copy; its index is 0..n-1.
    """
    counts, stale_sessions = _defect_counts(defects)
    missing = sorted({"symbol", "date", *PRICE_FIELDS} - set(prices.columns))
    if missing:
        raise ValueError(f"inject_defects: prices lack columns {missing}")
    rng = np.random.default_rng(seed)
    frame = prices.reset_index(drop=True).copy()
    truth: list[tuple[str, str, str, str | None]] = []

    # Each row's place in its symbol's session order, and its symbol's row count.
    by_session = frame.assign(_date=pd.to_datetime(frame["date"], format="%Y-%m-%d")).sort_values(
        ["symbol", "_date"], kind="stable"
    )
    position = by_session.groupby("symbol").cumcount().sort_index()
    length = by_session.groupby("symbol")["symbol"].transform("size").sort_index()

    symbols = sorted(frame["symbol"].unique())
    if counts["stale_series"] > len(symbols):
        raise ValueError(
            f"inject_defects: {counts['stale_series']} stale series asked, "
            f"only {len(symbols)} symbols"
        )
    stale = [str(s) for s in rng.choice(symbols, size=counts["stale_series"], replace=False)]
    short = sorted(s for s in stale if (length[frame["symbol"] == s] < stale_sessions + 2).any())
    if short:
        raise ValueError(
            f"inject_defects: {short} have too few sessions to lose {stale_sessions} and keep two"
        )
    is_stale = frame["symbol"].isin(stale)
    remaining = length - np.where(is_stale, stale_sessions, 0)
    removed = list(frame.index[is_stale & (position >= remaining)])
    truth += [(frame.at[i, "symbol"], frame.at[i, "date"], "stale_series", None) for i in removed]

    # Row defects: distinct rows, never a symbol's first or last remaining session.
    eligible = frame.index[(position >= 1) & (position <= remaining - 2)].to_numpy()
    wanted = sum(counts[kind] for kind in ROW_DEFECTS)
    if wanted > len(eligible):
        raise ValueError(
            f"inject_defects: {wanted} row defects asked, only {len(eligible)} eligible rows "
            "(a symbol's first and last sessions are never hit)"
        )
    picked = iter(rng.choice(eligible, size=wanted, replace=False).tolist())
    added: dict[int, pd.Series] = {}
    for kind in ROW_DEFECTS:
        for _ in range(counts[kind]):
            row = next(picked)
            truth_row = [frame.at[row, "symbol"], frame.at[row, "date"], kind, None]
            if kind == "gaps":
                removed.append(row)
            elif kind in ADDS_ROW:
                added[row], truth_row[3] = _damaged(kind, frame.loc[row], rng)
            else:
                damaged, truth_row[3] = _damaged(kind, frame.loc[row], rng)
                for field in PRICE_FIELDS:
                    frame.at[row, field] = damaged[field]
            truth.append(tuple(truth_row))

    kept = frame.drop(index=removed).assign(_row=lambda f: f.index, _copy=0)
    copies = pd.DataFrame(list(added.values()), columns=frame.columns)
    copies = copies.assign(_row=list(added), _copy=1).astype(frame.dtypes.to_dict())
    out = pd.concat([kept, copies]) if len(copies) else kept
    out = out.sort_values(["_row", "_copy"], kind="stable").drop(columns=["_row", "_copy"])
    table = pd.DataFrame(truth, columns=TRUTH_COLUMNS).astype({"expected_reason": object})
    table = table.sort_values(["symbol", "date", "defect"], kind="stable")
    return out.reset_index(drop=True), table.reset_index(drop=True)


def _defect_counts(defects: dict) -> tuple[dict[str, int], int]:
    unknown = sorted(set(defects) - set(DEFECTS) - {"stale_sessions"})
    if unknown:
        raise ValueError(
            f"inject_defects: unknown defects {unknown}; known: {[*DEFECTS, 'stale_sessions']}"
        )
    counts = {kind: int(defects.get(kind) or 0) for kind in DEFECTS}
    negative = sorted(kind for kind, count in counts.items() if count < 0)
    if negative:
        raise ValueError(f"inject_defects: negative counts for {negative}")
    stale_sessions = int(defects.get("stale_sessions", 5))
    if stale_sessions < 1:
        raise ValueError(f"inject_defects: stale_sessions must be ≥ 1, got {stale_sessions}")
    return counts, stale_sessions


def _negated(text: str) -> str:
    """A negative value in the text's own style; "-1" where the value is not positive."""
    return f"-{text.strip()}" if float(text) > 0 else "-1"


def _damaged(kind: str, row: pd.Series, rng: np.random.Generator) -> tuple[pd.Series, str | None]:
    """The row as defect ``kind`` leaves it (or the row it adds), and the expected primary reason
    silver quarantines it with (None: not quarantined)."""
    row = row.copy()
    reason = DEFECTS[kind]
    if kind == "conflicting_duplicates":
        low, high = float(row["low"]), float(row["high"])
        close = str((low + high) / 2)  # still within [low, high]: a valid row, only different
        row["close"] = close if close != row["close"] else str(high)
    elif kind == "bad_ohlc":
        row["high"] = str(max(float(row["open"]), float(row["close"])) * 0.99)
    elif kind == "nan_prices":
        field = str(rng.choice(OHLC_FIELDS))
        row[field], reason = "", f"missing_{field}"
    elif kind == "negative_prices":
        field = str(rng.choice(OHLC_FIELDS))
        row[field] = _negated(row[field])
    elif kind == "negative_volume":
        row["volume"] = _negated(row["volume"])
    elif kind != "exact_duplicates":
        raise ValueError(f"not a row-altering defect: {kind!r}")
    return row, reason
