"""The serving store: its DDL from conf, and each run's rows in the shape of its tables.

The DDL is ``CREATE SCHEMA/TABLE IF NOT EXISTS``.

Every name comes from ``serving_store`` in conf and is checked against PostgreSQL's rule for an
unquoted identifier (lower-case letters, digits and underscores, not starting with a digit, at
most 63 bytes) before it is quoted into a statement, so conf cannot inject SQL and a typo fails
with the key that holds it. Column types come from a closed list. The statements are saved
through ``stock_ml.io.PostgresStatementsDataset``, which runs them in one transaction.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pandas as pd

from stock_ml.runs import run_partition_key

IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")
COLUMN_TYPES = frozenset(
    {
        "text",
        "date",
        "timestamptz",
        "smallint",
        "integer",
        "bigint",
        "double precision",
        "boolean",
    }
)


def sql_identifier(name: object, where: str) -> str:
    """``name`` double-quoted, after checking it is a plain identifier (``where``: its conf key)."""
    if not isinstance(name, str) or not IDENTIFIER.fullmatch(name):
        raise ValueError(
            f"serving_store.{where}: {name!r} is not a valid SQL identifier "
            "(lower-case letters, digits and _, not starting with a digit, at most 63 characters)"
        )
    return f'"{name}"'


def _table_ddl(schema: str, table: str, spec: dict) -> str:
    where = f"tables.{table}"
    columns = spec.get("columns") or {}
    if not columns:
        raise ValueError(f"serving_store.{where}: no columns")
    lines = []
    for column, kind in columns.items():
        name = sql_identifier(column, f"{where}.columns")
        if kind not in COLUMN_TYPES:
            raise ValueError(
                f"serving_store.{where}.columns.{column}: type {kind!r} is not one of "
                f"{sorted(COLUMN_TYPES)}"
            )
        lines.append(f"{name} {kind}")
    key = list(spec.get("primary_key") or [])
    unknown = sorted(set(key) - set(columns))
    if not key or unknown:
        raise ValueError(
            f"serving_store.{where}.primary_key: needs columns of the table, got {key!r}"
            + (f" (unknown: {unknown})" if unknown else "")
        )
    keys = ", ".join(sql_identifier(column, f"{where}.primary_key") for column in key)
    lines.append(f"PRIMARY KEY ({keys})")
    body = ",\n  ".join(lines)
    return f"CREATE TABLE IF NOT EXISTS {schema}.{sql_identifier(table, 'tables')} (\n  {body}\n)"


def serving_store_ddl(store: dict) -> list[str]:
    """The statements that create the env's schema and every table declared for it.

    Idempotent (``IF NOT EXISTS``): running them again changes nothing, and a table that exists
    keeps its rows. A changed column list is not migrated: that needs a migration, not a rerun.
    """
    schema = sql_identifier(store.get("schema"), "schema")
    tables = store.get("tables") or {}
    if not tables:
        raise ValueError("serving_store.tables: no tables declared")
    return [f"CREATE SCHEMA IF NOT EXISTS {schema}"] + [
        _table_ddl(schema, table, spec) for table, spec in tables.items()
    ]


# --- Publishing: each run's rows, in the declared columns and types of their serving table ---

_INTEGER_TYPES = {"smallint": "Int16", "integer": "Int32", "bigint": "Int64"}


def conform_rows(frame: pd.DataFrame, store: dict, table: str) -> pd.DataFrame:
    """``frame`` as rows of ``table``: its declared columns, in order, with their declared types.

    A declared column the frame lacks, or a primary key that repeats or is null, is an error naming
    the table (the write would fail in the database anyway, later and less clearly). Columns the
    table does not declare are not served: the serving tables are a projection of the lake.
    """
    where = f"serving_store.tables.{table}"
    spec = (store.get("tables") or {}).get(table, {})
    columns = spec.get("columns")
    if not columns:
        raise ValueError(f"{where}: not declared")
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"{where}: the rows to publish lack the columns {missing}")
    rows = frame[list(columns)].reset_index(drop=True)
    for column, kind in columns.items():
        values = rows[column]
        if kind == "date":
            rows[column] = pd.to_datetime(values).dt.date.astype(object)
        elif kind == "timestamptz":
            rows[column] = pd.to_datetime(values, utc=True)
        elif kind in _INTEGER_TYPES:
            rows[column] = values.astype(_INTEGER_TYPES[kind])
        elif kind == "double precision":
            rows[column] = values.astype(float)
        elif kind == "boolean":
            rows[column] = values.astype("boolean")
        else:
            rows[column] = values.astype("string")
    key = list(spec["primary_key"])
    bad = rows[key].isna().any(axis=1) | rows.duplicated(key, keep=False)
    if bad.any():
        example = rows.loc[bad, key].iloc[0].to_dict()
        raise ValueError(
            f"{where}.primary_key: {int(bad.sum())} rows have a null or repeated key {key}, "
            f"e.g. {example}"
        )
    return rows


def _run_partition(partitions: dict[str, Callable[[], pd.DataFrame]], run: dict, what: str):
    key = run_partition_key(run)
    if key not in partitions:
        raise KeyError(f"{what}: no partition {key!r} for run {run['id']!r}")
    return partitions[key]()


def predictions_rows(
    predictions: dict[str, Callable[[], pd.DataFrame]], run: dict, store: dict
) -> pd.DataFrame:
    """The predictions this run scored (``scored_by_run``), whatever as-of dates they cover."""
    frames = [load() for load in predictions.values()]
    declared = list(store["tables"]["predictions"]["columns"])
    logged = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=declared)
    return conform_rows(logged[logged["scored_by_run"] == str(run["id"])], store, "predictions")


def performance_rows(performance: pd.DataFrame, store: dict) -> pd.DataFrame:
    """Matured performance per as-of date and model: recomputed whole each run, served whole."""
    return conform_rows(performance, store, "performance_log")


def drift_rows(drift: pd.DataFrame, store: dict) -> pd.DataFrame:
    """This run's drift of every feature and of the scores."""
    return conform_rows(drift, store, "monitoring_drift")


def data_health_rows(
    data_health: dict[str, Callable[[], pd.DataFrame]], run: dict, store: dict
) -> pd.DataFrame:
    """This run's row accounting and freshness per symbol, stamped with the run's identity."""
    health = _run_partition(data_health, run, "silver_data_health").assign(
        run_id=str(run["id"]), run_date=run["date"]
    )
    return conform_rows(health, store, "data_health")


def quarantine_rows(
    quarantine: dict[str, Callable[[], pd.DataFrame]], run: dict, store: dict
) -> pd.DataFrame:
    """The rows this run's ingest rejected, as the vendor sent them, with the reasons."""
    return conform_rows(_run_partition(quarantine, run, "silver_quarantine"), store, "quarantine")
