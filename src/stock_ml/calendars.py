"""Exchange sessions from exchange-calendars, shared by silver validation and the generator."""

from __future__ import annotations

from functools import cache

import pandas as pd


def exchange_sessions(calendar: str, start, end) -> pd.DatetimeIndex:
    """Sessions of an exchange calendar (e.g. XWAR, XNYS) between two dates, inclusive."""
    first = min(pd.Timestamp(start), pd.Timestamp(end)).normalize()
    return _sessions(calendar, first, pd.Timestamp(end).normalize())


@cache
def _sessions(calendar: str, first: pd.Timestamp, last: pd.Timestamp) -> pd.DatetimeIndex:
    """Memoized: building a calendar costs ~0.2 s, and silver and data health ask for the same
    sessions in one run. A DatetimeIndex is immutable, so sharing it is safe."""
    import exchange_calendars as xcals  # 0.5 s import: only where sessions are needed

    # The calendar's own bounds must contain the range with room on both sides: exchange-calendars
    # rejects a range end later than the calendar's last session, and needs start < end.
    bounds = {"start": first - pd.Timedelta(days=7), "end": last + pd.Timedelta(days=7)}
    return xcals.get_calendar(calendar, **bounds).sessions_in_range(first, last)


def sessions_from(calendar: str, start, count: int) -> pd.DatetimeIndex:
    """The first ``count`` sessions on or after ``start``."""
    # ~252 sessions a year on every exchange; ask for a generous span, then cut.
    end = pd.Timestamp(start) + pd.Timedelta(days=int(count * 1.6) + 30)
    sessions = exchange_sessions(calendar, start, end)
    if len(sessions) < count:
        raise ValueError(
            f"{calendar} has only {len(sessions)} sessions from {start} to {end.date()}"
        )
    return sessions[:count]
