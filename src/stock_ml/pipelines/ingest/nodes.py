"""Ingest: read the configured source and keep what it said, with where and when it was read.

Bronze holds the source's values as text (no typing, no cleaning) plus lineage columns, so a later
question "what did the vendor send?" has an answer. Typing happens in silver.

Modes (``ingest.mode``, or ``--params ingest_mode=...`` for one run):

===========  ===================================================================================
incremental  only rows after the last stored session of each symbol (all rows for a symbol with
             none stored); rows stored by this same run id do not count, so a rerun refetches
             exactly what its first attempt fetched
full         every row the source has; silver is rebuilt from this run alone (a new version)
backfill     rows from ``backfill.start`` to ``backfill.end``, in calendar-month chunks; silver's
             rows in that range are replaced by the run's
===========  ===================================================================================

Rows whose date does not parse are never left out by the window: they go to bronze and silver
quarantines them (a row that cannot be placed in time cannot be judged old either).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

import pandas as pd

from stock_ml.runs import run_partition_key
from stock_ml.synthetic import generate_ohlcv, inject_defects, render_text
from stock_ml.universe import in_scope, run_scope, scope_symbols, symbol_groups, yahoo_tickers

logger = logging.getLogger(__name__)

PRICE_COLUMNS = ["date", "open", "high", "low", "close", "volume"]
LINEAGE_COLUMNS = [
    "source",
    "source_file",
    "source_row",
    "ingest_run_id",
    "ingest_time",
    "ingest_mode",
    "ingest_chunk",
]
MODES = ("incremental", "full", "backfill")
BRONZE_COLUMNS = ["symbol", *PRICE_COLUMNS, *LINEAGE_COLUMNS]


def _outside(symbols: pd.Series, skip: frozenset[str], only: frozenset[str] | None) -> pd.Series:
    """Rows not to read: symbols of disabled groups, or (a narrowed run) outside its scope."""
    return ~symbols.isin(only) if only is not None else symbols.isin(skip)


def read_csv_partitions(
    partitions: dict[str, Callable[[], pd.DataFrame]],
    csv: dict,
    skip_symbols: frozenset[str] = frozenset(),
    only_symbols: frozenset[str] | None = None,
) -> pd.DataFrame:
    """Load vendor CSVs (as text) in either layout and map vendor columns to ours.

    ``csv`` is one entry of ``ingest.csv_formats``. ``csv.layout``: ``per_ticker`` (one file per
    symbol; the symbol is the ``symbol`` group of ``csv.symbol_pattern`` matched against the file
    name) or ``long`` (any number of files with a symbol column, mapped to ``symbol`` in
    ``csv.columns``). ``csv.columns`` maps {vendor name: our name}. Delimiter and encoding are the
    catalog dataset's ``load_args``. Files (per_ticker) or rows (long) of ``skip_symbols`` are not
    read, and the log says how many. With ``only_symbols`` (a run narrowed to a scope), files and
    rows of any other symbol are not read instead, so silver never sees them.
    """
    layout = csv.get("layout", "per_ticker")
    mapping: dict[str, str] = csv["columns"]
    required = set(PRICE_COLUMNS) | ({"symbol"} if layout == "long" else set())
    missing_targets = required - set(mapping.values())
    if missing_targets:
        raise ValueError(f"ingest.source.csv.columns maps nothing to {sorted(missing_targets)}")
    if layout not in {"per_ticker", "long"}:
        raise ValueError(f"ingest.source.csv.layout must be 'per_ticker' or 'long', got {layout!r}")
    pattern = re.compile(csv["symbol_pattern"]) if layout == "per_ticker" else None
    narrowed = only_symbols is not None
    why = "outside this run's scope" if narrowed else "of disabled exchange groups"
    frames = []
    for partition_id in sorted(partitions):
        match = pattern.fullmatch(partition_id) if pattern else None
        if pattern and match is None:
            raise ValueError(
                f"{partition_id}: file name does not match symbol_pattern {pattern.pattern!r}"
            )
        symbol = match["symbol"].upper() if match else None
        if symbol and (symbol not in only_symbols if narrowed else symbol in skip_symbols):
            where = "outside this run's scope" if narrowed else "in a disabled exchange group"
            logger.info("Skipped %s: %s is %s", partition_id, match["symbol"], where)
            continue
        try:
            raw = partitions[partition_id]()
        except Exception as error:  # pandas/kedro say why, but not always which file
            raise ValueError(f"{partition_id}: cannot be read as CSV: {error}") from error
        absent = [column for column in mapping if column not in raw.columns]
        if absent:
            hint = " (wrong delimiter?)" if len(raw.columns) == 1 else ""
            raise ValueError(
                f"{partition_id}: missing columns {absent}; "
                f"the header has {list(raw.columns)}{hint}"
            )
        frame = raw[list(mapping)].rename(columns=mapping)
        if match:
            frame.insert(0, "symbol", match["symbol"])
        frame["symbol"] = frame["symbol"].str.strip().str.upper()
        skipped = _outside(frame["symbol"], skip_symbols, only_symbols)
        if skipped.any():
            logger.info(
                "Skipped %d rows of %s: symbols %s %s",
                int(skipped.sum()),
                partition_id,
                why,
                sorted(frame.loc[skipped, "symbol"].unique()),
            )
        frame["source_file"] = partition_id
        # Row number as a person sees it in the file: header is line 1.
        frame["source_row"] = range(2, len(frame) + 2)
        frames.append(frame[~skipped])
        logger.info("Read %d rows from %s", len(frame), partition_id)
    if not frames:
        raise ValueError(
            "The CSV source folder has no files matching the configured suffix"
            + (f" for this run's scope {sorted(only_symbols)}" if narrowed else "")
            + (" outside disabled exchange groups" if skip_symbols and not narrowed else "")
        )
    return pd.concat(frames, ignore_index=True)


def synthetic_source(synthetic: dict, as_of: str | None = None) -> pd.DataFrame:
    """Seeded synthetic prices, rendered as text like a vendor file would be.

    With ``as_of`` the generator acts as a live feed seen on that date: sessions after it have not
    happened yet and are not delivered (so runs with later run dates see history grow, the way
    incremental ingest meets a real source).

    ``synthetic.regimes`` (regime shifts) and ``synthetic.defects`` (counts of injected defects,
    see ``stock_ml.synthetic.inject_defects``) are optional; without them the prices are clean.
    """
    prices = generate_ohlcv(
        symbols=list(synthetic["symbols"]),
        start=str(synthetic["start"]),
        sessions=int(synthetic["sessions"]),
        seed=int(synthetic["seed"]),
        calendar=str(synthetic.get("calendar", "XWAR")),
        regimes=list(synthetic.get("regimes") or []) or None,
    )
    if as_of is not None:
        prices = prices[prices["date"] <= pd.Timestamp(as_of)]
    text = render_text(prices)
    text["source_file"] = f"synthetic(seed={synthetic['seed']})"
    text["source_row"] = text.groupby("symbol").cumcount() + 1
    defects = dict(synthetic.get("defects") or {})
    if any(int(count) for key, count in defects.items() if key != "stale_sessions"):
        text, truth = inject_defects(text, defects, seed=int(synthetic["seed"]))
        logger.info(
            "Injected synthetic defects: %s", truth["defect"].value_counts().sort_index().to_dict()
        )
    return text


def parse_dates(text: pd.Series, date_format: str) -> pd.Series:
    """Source date text → Timestamp; what does not parse is NaT (silver quarantines it)."""
    return pd.to_datetime(text, format=date_format, errors="coerce")


def plan_ingest(stored: pd.DataFrame, ingest: dict, universe: dict, run: dict) -> dict:
    """Decide what this run fetches, from the mode and what silver already stores.

    ``stored`` is silver's (symbol, date, ingest_run_id), empty before the first run. Returns
    ``{"mode", "after": {symbol: last stored date}, "chunks": [[first, last], ...]}`` with ISO
    dates; only backfill has bounded chunks (``[[None, None]]`` otherwise). A run narrowed to a
    scope (``run.symbols`` / ``run.exchange_groups``) is checked here, its first step: a name
    outside the universe stops it before anything is fetched.
    """
    mode = str(ingest["mode"])
    if mode not in MODES:
        raise ValueError(f"ingest.mode must be one of {list(MODES)}, got {mode!r}")
    scope = scope_symbols(universe, run)
    if scope is not None:
        symbols, groups = run_scope(run)
        logger.info(
            "Run scope: %d symbols %s (run.symbols %s, run.exchange_groups %s); no other symbol "
            "is read, expected or scored",
            len(scope),
            sorted(scope),
            list(symbols) or None,
            list(groups) or None,
        )
    plan = {"mode": mode, "after": {}, "chunks": [[None, None]]}
    if mode == "incremental":
        earlier = stored[stored["ingest_run_id"] != str(run["id"])]
        last = earlier.groupby("symbol")["date"].max()
        plan["after"] = {symbol: day.date().isoformat() for symbol, day in last.items()}
        logger.info(
            "Incremental ingest: %d symbols stored (oldest watermark %s, newest %s)%s",
            len(last),
            last.min().date() if len(last) else None,
            last.max().date() if len(last) else None,
            "" if len(last) else "; nothing stored yet, so every row is new",
        )
    elif mode == "backfill":
        window = ingest.get("backfill") or {}
        if not window.get("start") or not window.get("end"):
            raise ValueError(
                "ingest.mode backfill needs a range: --params "
                "ingest_mode=backfill,backfill_start=YYYY-MM-DD,backfill_end=YYYY-MM-DD"
            )
        start, end = pd.Timestamp(window["start"]), pd.Timestamp(window["end"])
        if start > end:
            raise ValueError(f"backfill start {start.date()} is after its end {end.date()}")
        if end > pd.Timestamp(run["date"]):
            raise ValueError(f"backfill end {end.date()} is after the run date {run['date']}")
        plan["chunks"] = monthly_chunks(start, end)
        logger.info(
            "Backfill %s..%s in %d monthly chunks", start.date(), end.date(), len(plan["chunks"])
        )
    else:
        logger.info("Full ingest: every row of the source; silver is rebuilt from this run")
    return plan


def monthly_chunks(start: pd.Timestamp, end: pd.Timestamp) -> list[list[str]]:
    """[start, end] cut at calendar-month boundaries: [[first day, last day], ...], inclusive."""
    edges = pd.date_range(start.normalize(), end.normalize(), freq="MS")
    firsts = [start.normalize(), *[e for e in edges if e > start.normalize()]]
    lasts = [nxt - pd.Timedelta(days=1) for nxt in firsts[1:]] + [end.normalize()]
    return [
        [a.date().isoformat(), b.date().isoformat()] for a, b in zip(firsts, lasts, strict=True)
    ]


def _in_chunk(
    frame: pd.DataFrame, dates: pd.Series | None, plan: dict, chunk: list
) -> tuple[pd.Series, str]:
    """Rows of ``frame`` this chunk takes, and the chunk's label (``dates`` None: no window)."""
    if dates is None:
        return pd.Series(True, index=frame.index), "all"
    unparsed = dates.isna()
    if plan["mode"] == "backfill":
        start, end = pd.Timestamp(chunk[0]), pd.Timestamp(chunk[1])
        # Unparseable dates belong to no month: the first chunk carries them to quarantine.
        keep = dates.between(start, end) | (unparsed & (chunk == plan["chunks"][0]))
        return keep, chunk[0][:7]
    if plan["mode"] == "incremental" and plan["after"]:
        after = pd.to_datetime(frame["symbol"].map(plan["after"]))
        return unparsed | after.isna() | (dates > after), "all"
    return pd.Series(True, index=frame.index), "all"


def _yahoo_windows(plan: dict, chunk: list, symbols: list[str], source: dict, run: dict) -> dict:
    """(first, last) date → symbols to ask for it: a backfill chunk for all, else per watermark."""
    if plan["mode"] == "backfill":
        return {(chunk[0], chunk[1]): list(symbols)}
    windows: dict[tuple[str, str], list[str]] = {}
    for symbol in symbols:
        after = plan["after"].get(symbol)
        first = (
            (pd.Timestamp(after) + pd.Timedelta(days=1)).date().isoformat()
            if after
            else str(source["yahoo"]["history_start"])
        )
        windows.setdefault((first, str(run["date"])), []).append(symbol)
    return windows


def _fetch_yahoo(fetch, plan: dict, source: dict, universe: dict, run: dict) -> pd.DataFrame:
    """Ask Yahoo only for the windows the plan needs: one request per chunk and start date."""
    tickers = yahoo_tickers(universe)
    frames = []
    for chunk in plan["chunks"]:
        windows = _yahoo_windows(plan, chunk, list(tickers), source, run)
        for (first, last), symbols in sorted(windows.items()):
            if first > last:
                continue
            logger.info("Yahoo: %d tickers, %s..%s", len(symbols), first, last)
            frames.append(fetch({s: tickers[s] for s in symbols}, first, last))
    if not frames:  # every symbol is stored through the run date: nothing to ask for
        return pd.DataFrame(columns=["symbol", *PRICE_COLUMNS, "source_file", "source_row"])
    return pd.concat(frames, ignore_index=True)


def extract_prices(
    raw_price_files: dict[str, Callable[[], pd.DataFrame]],
    yahoo_prices: Callable[..., pd.DataFrame],
    plan: dict,
    source: dict,
    csv_formats: dict,
    universe: dict,
    parsing: dict,
    run: dict,
) -> dict[str, pd.DataFrame]:
    """Read the source chosen by ``ingest.source.kind`` within the plan; stamp every row.

    Returns the run's bronze partition ``{"ingest_date=<date>/run_id=<id>": rows}``: a rerun of
    the same run id replaces it, any other run adds its own.

    ``raw_price_files`` (PartitionedDataset) and ``yahoo_prices`` (a fetcher) are lazy: nothing is
    read from a source the env did not choose. A ``csv_folder`` source is read with the format
    ``csv_formats[source.csv_format]``. A narrowed run (``run.symbols`` / ``run.exchange_groups``)
    reads, generates or fetches only its scope's symbols, from every kind of source.
    """
    kind = source["kind"]
    skip = frozenset(symbol_groups(universe, enabled=False))
    only = scope_symbols(universe, run)
    if kind == "csv_folder":
        name = source["csv_format"]
        if name not in csv_formats:
            raise ValueError(
                f"ingest.source.csv_format {name!r} is not one of ingest.csv_formats "
                f"{sorted(csv_formats)}"
            )
        frame = read_csv_partitions(raw_price_files, csv_formats[name], skip, only)
    elif kind == "synthetic":
        frame = synthetic_source(source["synthetic"], as_of=str(run["date"]))
        skipped = _outside(frame["symbol"], skip, only)
        if skipped.any():
            logger.info(
                "Skipped %d synthetic rows %s",
                int(skipped.sum()),
                "outside this run's scope" if only is not None else "of disabled exchange groups",
            )
        frame = frame[~skipped]
    elif kind == "yahoo":
        frame = _fetch_yahoo(yahoo_prices, plan, source, in_scope(universe, run), run)
    else:
        raise ValueError(
            f"ingest.source.kind must be 'csv_folder', 'synthetic' or 'yahoo', got {kind!r}"
        )
    frame = frame.reset_index(drop=True)
    frame[PRICE_COLUMNS] = frame[PRICE_COLUMNS].astype(str)
    windowed = plan["mode"] == "backfill" or bool(plan["after"])
    # Only a window needs dates (parsing 1M dates costs ~1.5 s); silver parses them anyway.
    dates = parse_dates(frame["date"], parsing["date_format"]) if windowed else None
    chunks, taken = [], pd.Series(False, index=frame.index)
    for chunk in plan["chunks"]:
        keep, label = _in_chunk(frame, dates, plan, chunk)
        keep &= ~taken
        taken |= keep
        chunks.append(frame[keep].assign(ingest_chunk=label))
        if plan["mode"] == "backfill":
            logger.info("Backfill chunk %s: %d rows", label, int(keep.sum()))
    rows = pd.concat(chunks, ignore_index=True)
    rows["source"] = kind
    rows["ingest_run_id"] = str(run["id"])
    rows["ingest_time"] = str(run["time"])
    rows["ingest_mode"] = plan["mode"]
    logger.info(
        "Ingest run %s (%s): %d of %d source rows are in the window (%d outside it), %d symbols",
        run["id"],
        plan["mode"],
        len(rows),
        len(frame),
        len(frame) - len(rows),
        rows["symbol"].nunique(),
    )
    return {run_partition_key(run): rows[BRONZE_COLUMNS]}
