"""Seeded synthetic OHLCV universe.

Tests and the test env need prices that look like a market (random-walk closes with drift and
volatility per symbol, consistent OHLC, positive volume) without shipping data. Same seed, same
prices. Sessions are those of a real exchange calendar, so silver's session check holds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stock_ml.calendars import sessions_from


def generate_ohlcv(
    symbols: list[str],
    start: str,
    sessions: int,
    seed: int,
    *,
    calendar: str = "XWAR",
    daily_vol: float = 0.02,
) -> pd.DataFrame:
    """Return long-format OHLCV (symbol, date, open, high, low, close, volume), sorted."""
    if sessions < 1 or not symbols:
        raise ValueError(f"need at least one symbol and one session, got {symbols!r}, {sessions}")
    rng = np.random.default_rng(seed)
    dates = sessions_from(calendar, start, sessions)
    frames = []
    for symbol in symbols:
        drift = rng.normal(0.0003, 0.0005)
        vol = daily_vol * rng.uniform(0.6, 1.4)
        log_returns = rng.normal(drift, vol, size=sessions)
        close = 100.0 * rng.uniform(0.2, 5.0) * np.exp(np.cumsum(log_returns))
        open_ = close * np.exp(rng.normal(0.0, vol / 3, size=sessions))
        spread = np.abs(rng.normal(0.0, vol / 2, size=sessions))
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
