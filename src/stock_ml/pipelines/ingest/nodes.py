"""Ingest: read the configured source and keep what it said, with where and when it was read.

Bronze holds the source's values as text (no typing, no cleaning) plus lineage columns, so a later
question "what did the vendor send?" has an answer. Typing happens in silver.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

import pandas as pd

from stock_ml.synthetic import generate_ohlcv
from stock_ml.universe import symbol_groups

logger = logging.getLogger(__name__)

PRICE_COLUMNS = ["date", "open", "high", "low", "close", "volume"]
LINEAGE_COLUMNS = ["source", "source_file", "source_row", "ingest_run_id"]
BRONZE_COLUMNS = ["symbol", *PRICE_COLUMNS, *LINEAGE_COLUMNS]


def read_csv_partitions(
    partitions: dict[str, Callable[[], pd.DataFrame]],
    csv: dict,
    skip_symbols: frozenset[str] = frozenset(),
) -> pd.DataFrame:
    """Load vendor CSVs (as text) in either layout and map vendor columns to ours.

    ``csv`` is one entry of ``ingest.csv_formats``. ``csv.layout``: ``per_ticker`` (one file per
    symbol; the symbol is the ``symbol`` group of ``csv.symbol_pattern`` matched against the file
    name) or ``long`` (any number of files with a symbol column, mapped to ``symbol`` in
    ``csv.columns``). ``csv.columns`` maps {vendor name: our name}. Delimiter and encoding are the
    catalog dataset's ``load_args``. Files (per_ticker) or rows (long) of ``skip_symbols`` are not
    read, and the log says how many.
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
    frames = []
    for partition_id in sorted(partitions):
        match = pattern.fullmatch(partition_id) if pattern else None
        if pattern and match is None:
            raise ValueError(
                f"{partition_id}: file name does not match symbol_pattern {pattern.pattern!r}"
            )
        if match and match["symbol"].upper() in skip_symbols:
            logger.info(
                "Skipped %s: %s is in a disabled exchange group", partition_id, match["symbol"]
            )
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
        skipped = frame["symbol"].isin(skip_symbols)
        if skipped.any():
            logger.info(
                "Skipped %d rows of %s: symbols of disabled exchange groups %s",
                int(skipped.sum()),
                partition_id,
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
            + (" outside disabled exchange groups" if skip_symbols else "")
        )
    return pd.concat(frames, ignore_index=True)


def synthetic_source(synthetic: dict) -> pd.DataFrame:
    """Seeded synthetic prices, rendered as text like a vendor file would be."""
    prices = generate_ohlcv(
        symbols=list(synthetic["symbols"]),
        start=str(synthetic["start"]),
        sessions=int(synthetic["sessions"]),
        seed=int(synthetic["seed"]),
        calendar=str(synthetic.get("calendar", "XWAR")),
    )
    text = prices.astype({c: str for c in ["open", "high", "low", "close", "volume"]})
    text["date"] = prices["date"].dt.strftime("%Y-%m-%d")
    text["source_file"] = f"synthetic(seed={synthetic['seed']})"
    text["source_row"] = text.groupby("symbol").cumcount() + 1
    return text


def extract_prices(
    raw_price_files: dict[str, Callable[[], pd.DataFrame]],
    source: dict,
    csv_formats: dict,
    universe: dict,
    run_id: str,
) -> pd.DataFrame:
    """Read the source chosen by ``ingest.source.kind`` and stamp every row with its lineage.

    A ``csv_folder`` source is read with the format ``csv_formats[source.csv_format]``.

    ``raw_price_files`` is a lazy PartitionedDataset: nothing is read unless the kind is
    ``csv_folder``.
    """
    kind = source["kind"]
    disabled = symbol_groups(universe, enabled=False)
    skip = frozenset(disabled)
    if kind == "csv_folder":
        name = source["csv_format"]
        if name not in csv_formats:
            raise ValueError(
                f"ingest.source.csv_format {name!r} is not one of ingest.csv_formats "
                f"{sorted(csv_formats)}"
            )
        frame = read_csv_partitions(raw_price_files, csv_formats[name], skip)
    elif kind == "synthetic":
        frame = synthetic_source(source["synthetic"])
        skipped = frame["symbol"].isin(skip)
        if skipped.any():
            logger.info("Skipped %d synthetic rows of disabled exchange groups", int(skipped.sum()))
        frame = frame[~skipped]
    else:
        raise ValueError(f"ingest.source.kind must be 'csv_folder' or 'synthetic', got {kind!r}")
    frame["source"] = kind
    frame["ingest_run_id"] = run_id
    frame[PRICE_COLUMNS] = frame[PRICE_COLUMNS].astype(str)
    logger.info("Ingest run %s: %d rows, %d symbols", run_id, len(frame), frame.symbol.nunique())
    return frame[BRONZE_COLUMNS]
