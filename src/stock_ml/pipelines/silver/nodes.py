"""Silver: validate, type and deduplicate bronze rows, and account for every one of them.

Each bronze row of a run ends in exactly one place: silver, the quarantine table (with a reason
code), or the count of exact duplicates. ``validate_prices`` asserts that identity, so a bug that
loses rows stops the run instead of thinning the data.

The rules are a pandera schema (``price_schema``); a failed check names the reason a row is
quarantined. Reason codes:

=====================  =================================================================
missing_<field>        the value is empty
unparseable_<field>    the text does not parse (a date not in ``date_format``, "n/a" price)
non_positive_price     open, high, low or close ≤ 0
negative_volume        volume < 0
inconsistent_ohlc      high < max(open, close) or low > min(open, close)
future_date            date after the run date
not_a_session          date is not a session of the universe's exchange calendar
unknown_symbol         symbol is not in the universe
duplicate_key          another row of the run has the same (symbol, date) and other values;
                       the last one read wins, as a vendor's correction would
=====================  =================================================================
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from stock_ml.calendars import exchange_sessions
from stock_ml.pipelines.ingest.nodes import PRICE_COLUMNS, parse_dates
from stock_ml.runs import run_partition_key
from stock_ml.universe import (
    exchange_groups,
    in_scope,
    scope_symbols,
    symbol_calendars,
    symbol_groups,
)

logger = logging.getLogger(__name__)

KEYS = ["symbol", "date"]
PRICE_FIELDS = PRICE_COLUMNS[1:]  # open, high, low, close, volume
SOURCE_FIELDS = PRICE_COLUMNS  # the bronze value columns, as the source wrote them
SILVER_COLUMNS = [*KEYS, *PRICE_FIELDS, "ingest_run_id"]
# A row's primary reason is its most basic defect: a value that is not there or does not parse,
# then who and when, then the values, then how they relate.
REASON_ORDER = [
    "missing",
    "unparseable",
    "unknown_symbol",
    "future_date",
    "not_a_session",
    "non_positive_price",
    "negative_volume",
    "inconsistent_ohlc",
    "duplicate_key",
]


def _reason_rank(reason: str) -> int:
    return next(i for i, prefix in enumerate(REASON_ORDER) if reason.startswith(prefix))


def price_schema(calendar_of: dict[str, str], sessions: dict[str, pd.DatetimeIndex], run_date):
    """The silver contract as a pandera schema; each check's name is its quarantine reason.

    ``calendar_of`` maps each symbol of the enabled exchange groups to its calendar; ``sessions``
    holds each calendar's sessions up to the run date.
    """
    import pandera.pandas as pa

    def positive() -> pa.Column:
        return pa.Column(
            float, pa.Check(lambda s: s > 0, name="non_positive_price"), nullable=False
        )

    def on_own_calendar(df: pd.DataFrame) -> pd.Series:
        calendar = df["symbol"].map(calendar_of)
        ok = df["date"].isna() | calendar.isna()  # reported as unparseable / unknown already
        for name, days in sessions.items():
            ok |= calendar.eq(name) & df["date"].isin(days)
        return ok

    return pa.DataFrameSchema(
        {
            "symbol": pa.Column(
                str, pa.Check(lambda s: s.isin(calendar_of), name="unknown_symbol")
            ),
            "date": pa.Column(
                "datetime64[ns]",
                pa.Check(lambda s: s <= run_date, name="future_date"),
                nullable=False,
            ),
            **{field: positive() for field in ["open", "high", "low", "close"]},
            "volume": pa.Column(
                float, pa.Check(lambda s: s >= 0, name="negative_volume"), nullable=False
            ),
        },
        checks=[
            pa.Check(on_own_calendar, name="not_a_session"),
            pa.Check(
                # rows with a missing price already fail not_nullable; judge complete rows only
                lambda df: (
                    (
                        (df["high"] >= df[["open", "close"]].max(axis=1))
                        & (df["low"] <= df[["open", "close"]].min(axis=1))
                    )
                    | df[["open", "high", "low", "close"]].isna().any(axis=1)
                ),
                name="inconsistent_ohlc",
            ),
        ],
        strict=False,
        coerce=False,
    )


def _parse(rows: pd.DataFrame, date_format: str, decimal: str) -> pd.DataFrame:
    """Parse bronze text; what does not parse becomes NaN/NaT and fails ``not_nullable``.

    With a ``decimal`` mark other than ".", a "." in a number is not accepted (it could be a
    thousands separator): such values do not parse and are quarantined.
    """
    typed = rows[["symbol"]].astype(str)
    typed["date"] = parse_dates(rows["date"], date_format)
    for field in PRICE_FIELDS:
        text = rows[field]
        if decimal != ".":
            text = text.where(~text.str.contains(".", regex=False)).str.replace(
                decimal, ".", regex=False
            )
        typed[field] = pd.to_numeric(text, errors="coerce").astype("float64")
    return typed


def _failure_reasons(typed: pd.DataFrame, raw: pd.DataFrame, schema) -> pd.Series:
    """All reason codes per failing row index, most basic first (REASON_ORDER), joined by ';'."""
    import pandera.errors as pa_errors

    try:
        schema.validate(typed, lazy=True)
        return pd.Series(dtype=str)
    except pa_errors.SchemaErrors as errors:
        cases = errors.failure_cases.dropna(subset=["index"])
    blank = raw[SOURCE_FIELDS].apply(lambda s: s.str.strip().eq("") | s.isna())
    reasons = []
    for case in cases.itertuples():
        index = int(case.index)
        if case.check == "not_nullable":
            kind = "missing" if blank.at[index, case.column] else "unparseable"
            reasons.append((index, f"{kind}_{case.column}"))
        else:
            reasons.append((index, str(case.check)))
    table = pd.DataFrame(reasons, columns=["index", "reason"]).drop_duplicates()
    table["rank"] = table["reason"].map(_reason_rank)
    table = table.sort_values(["index", "rank", "reason"])
    return table.groupby("index", sort=True)["reason"].agg(";".join)


def validate_prices(
    bronze: pd.DataFrame,
    universe: dict,
    parsing: dict,
    run_date: str,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Bronze rows of one run → (silver rows, quarantine rows, per-symbol accounting).

    ``parsing`` says how the source writes values: ``date_format`` and ``decimal`` mark.

    Exact duplicates (same symbol and same source values) are dropped and counted; every other row
    is either kept or quarantined with its reasons. Within a run, the last row read for a
    (symbol, date) wins; the earlier ones are quarantined as ``duplicate_key``.
    """
    today = pd.Timestamp(run_date).normalize()
    rows = bronze.reset_index(drop=True)
    exact = rows.duplicated(subset=["symbol", *SOURCE_FIELDS], keep="last")
    unique = rows[~exact]
    typed = _parse(unique, parsing["date_format"], parsing.get("decimal", "."))
    dates = typed["date"].dropna()
    first = dates.min() if len(dates) else today
    # Sessions up to the run date only: anything later is a future_date already.
    calendar_of = symbol_calendars(universe)
    sessions = {cal: exchange_sessions(cal, first, today) for cal in set(calendar_of.values())}
    schema = price_schema(calendar_of, sessions, today)
    reasons = _failure_reasons(typed, unique, schema)

    valid = typed.drop(index=reasons.index)
    superseded = valid.duplicated(subset=KEYS, keep="last")
    reasons = pd.concat([reasons, pd.Series("duplicate_key", index=valid.index[superseded])])

    quarantine = unique.loc[reasons.index].copy()
    quarantine["reasons"] = reasons
    quarantine["reason"] = reasons.str.split(";").str[0]
    silver = valid[~superseded].assign(
        ingest_run_id=unique.loc[valid.index[~superseded], "ingest_run_id"]
    )
    silver = silver[SILVER_COLUMNS].sort_values(KEYS).reset_index(drop=True)

    accounting = _accounting(rows, exact, quarantine, silver)
    if (
        int(accounting["rows_read"].sum()) != len(rows)
        or not (
            accounting["rows_read"]
            == accounting["exact_duplicates"] + accounting["quarantined"] + accounting["kept"]
        ).all()
    ):
        raise AssertionError(
            f"Row accounting broken: bronze ≠ silver + quarantine + duplicates\n{accounting}"
        )
    by_reason = quarantine["reason"].value_counts().to_dict()
    logger.info(
        "Silver: %d bronze rows = %d kept + %d quarantined + %d exact duplicates; "
        "quarantined by reason %s",
        len(rows),
        len(silver),
        len(quarantine),
        int(exact.sum()),
        by_reason,
    )
    quarantine = quarantine.sort_values(["source_file", "source_row"]).reset_index(drop=True)
    return silver, quarantine, accounting


def validate_run(
    bronze_partitions: dict, universe: dict, parsing: dict, run: dict
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame], pd.DataFrame]:
    """Validate this run's bronze partition: (its silver rows, its quarantine partition keyed
    like the bronze one, its per-symbol accounting).

    Only the run's own partition is read (the archive holds every earlier run, loaded lazily).
    """
    key = run_partition_key(run)
    if key not in bronze_partitions:
        raise ValueError(
            f"No bronze partition {key!r} for run {run['id']!r}: run the ingest pipeline of this "
            f"run first (stored runs: {len(bronze_partitions)})"
        )
    silver, quarantine, accounting = validate_prices(
        bronze_partitions[key](), universe, parsing, str(run["date"])
    )
    return silver, {key: quarantine}, accounting


def merge_silver(
    stored: pd.DataFrame, run_rows: pd.DataFrame, ingest: dict, universe: dict, run: dict
) -> pd.DataFrame:
    """The new silver table: what is stored, updated with this run's rows by the ingest mode.

    * full: this run's rows only (a rebuild);
    * incremental: stored rows, where this run's row wins on the same (symbol, date);
    * backfill: stored rows with the enabled symbols' rows of [start, end] replaced by this run's.

    A run narrowed to a scope (``run.symbols`` / ``run.exchange_groups``) fetched only its scope's
    symbols, so full and backfill replace only theirs: every other symbol's stored rows are kept.

    Rows an earlier attempt of this same run id stored are dropped first, so a rerun replaces
    them instead of stacking on top.
    """
    mode = str(ingest["mode"])
    kept = stored[stored["ingest_run_id"] != str(run["id"])]
    rerun = len(stored) - len(kept)
    scope = scope_symbols(universe, run)
    if mode == "full":
        kept = kept.iloc[0:0] if scope is None else kept[~kept["symbol"].isin(scope)]
    elif mode == "backfill":
        window = ingest["backfill"]
        start, end = pd.Timestamp(window["start"]), pd.Timestamp(window["end"])
        refetched = symbol_groups(universe, enabled=True) if scope is None else scope
        in_range = kept["date"].between(start, end) & kept["symbol"].isin(refetched)
        kept = kept[~in_range]
    merged = pd.concat([kept[SILVER_COLUMNS], run_rows[SILVER_COLUMNS]], ignore_index=True)
    merged = merged.drop_duplicates(subset=KEYS, keep="last")
    merged = merged.sort_values(KEYS).reset_index(drop=True)
    logger.info(
        "Silver merge (%s): %d stored rows (%d of an earlier attempt of this run), %d kept, "
        "%d from this run → %d rows, %d new",
        mode,
        len(stored),
        rerun,
        len(kept),
        len(run_rows),
        len(merged),
        len(merged) - len(stored),
    )
    return merged


def run_data_health(
    silver: pd.DataFrame,
    accounting: pd.DataFrame,
    universe: dict,
    run: dict,
    max_sessions_behind: int,
) -> dict[str, pd.DataFrame]:
    """``data_health`` of this run, keyed like its bronze partition: one health record per run.
    A narrowed run (``run.symbols`` / ``run.exchange_groups``) expects only its scope's symbols."""
    health = data_health(
        silver, accounting, in_scope(universe, run), str(run["date"]), max_sessions_behind
    )
    _log_rows_per_symbol(health)
    return {run_partition_key(run): health}


LOGGED_SYMBOLS = 60  # a longer universe is summarised; the table itself has every symbol


def _log_rows_per_symbol(health: pd.DataFrame) -> None:
    columns = [
        "symbol",
        "rows_read",
        "kept",
        "quarantined",
        "exact_duplicates",
        "missing_sessions",
        "status",
    ]
    shown = health[columns].head(LOGGED_SYMBOLS)
    more = len(health) - len(shown)
    logger.info(
        "Rows per symbol (this run):\n%s%s",
        shown.to_string(index=False),
        f"\n... and {more} more symbols in silver_data_health" if more > 0 else "",
    )


def _accounting(
    rows: pd.DataFrame, exact: pd.Series, quarantine: pd.DataFrame, silver: pd.DataFrame
) -> pd.DataFrame:
    """Per symbol: rows read = exact duplicates + quarantined + kept."""
    counts = pd.DataFrame(
        {
            "rows_read": rows.groupby("symbol").size(),
            "exact_duplicates": rows[exact].groupby("symbol").size(),
            "quarantined": quarantine.groupby("symbol").size(),
            "kept": silver.groupby("symbol").size(),
        }
    )
    return counts.fillna(0).astype("int64").rename_axis("symbol").reset_index()


def data_health(
    silver: pd.DataFrame,
    accounting: pd.DataFrame,
    universe: dict,
    run_date: str,
    max_sessions_behind: int,
) -> pd.DataFrame:
    """Per symbol of the enabled groups (and any other symbol seen): rows accounted, completeness
    against its group's calendar, freshness.

    ``missing_sessions`` counts calendar sessions between a symbol's first and last stored date
    that have no row; ``sessions_behind`` counts sessions after its last stored date up to the
    group's last session on or before the run date. A universe symbol with no row is ``missing``.
    """
    today = pd.Timestamp(run_date).normalize()
    start = silver["date"].min() if len(silver) else today
    spans = silver.groupby("symbol")["date"].agg(first_date="min", last_date="max", rows="size")
    enabled = [g for g in exchange_groups(universe) if g.enabled]
    group_of = {s: g for g in enabled for s in g.symbols}
    symbols = sorted(set(group_of) | set(accounting["symbol"]))
    health = accounting.set_index("symbol").reindex(symbols).fillna(0).astype("int64").join(spans)
    health["group"] = [group_of[s].name if s in group_of else None for s in symbols]
    health["missing_sessions"] = np.nan
    health["sessions_behind"] = np.nan
    health["expected_last_session"] = pd.NaT
    for group in enabled:
        sessions = exchange_sessions(group.calendar, start, today)
        expected_last = sessions.max()
        members = health.index.isin(group.symbols)
        stored = members & health["first_date"].notna()
        first = sessions.searchsorted(health.loc[stored, "first_date"], "left")
        last = sessions.searchsorted(health.loc[stored, "last_date"], "right")
        health.loc[stored, "missing_sessions"] = last - first - health.loc[stored, "rows"]
        health.loc[stored, "sessions_behind"] = sessions.searchsorted(expected_last, "right") - last
        health.loc[members, "expected_last_session"] = expected_last
        behind = health.loc[stored, "sessions_behind"]
        logger.info(
            "Freshness of %s (%s): last expected session %s; %d of %d symbols stored, "
            "newest %s, at most %s sessions behind",
            group.name,
            group.calendar,
            expected_last.date(),
            int(stored.sum()),
            len(group.symbols),
            health.loc[stored, "last_date"].max().date() if stored.any() else None,
            int(behind.max()) if len(behind) else None,
        )
    health["status"] = np.select(
        [
            health["group"].isna(),
            health["rows"].isna(),
            health["sessions_behind"] > max_sessions_behind,
        ],
        ["not_in_universe", "missing", "stale"],
        default="fresh",
    )
    health = health.drop(columns="rows").rename_axis("symbol").reset_index()
    for column in ["missing_sessions", "sessions_behind"]:
        health[column] = health[column].astype("Int64")
    logger.info(
        "Data health: %s; missing sessions %d",
        health["status"].value_counts().to_dict(),
        int(health["missing_sessions"].fillna(0).sum()),
    )
    return health
