"""The DDL of the serving store, built from conf: ``CREATE SCHEMA/TABLE IF NOT EXISTS``.

Every name comes from ``serving_store`` in conf and is checked against PostgreSQL's rule for an
unquoted identifier (lower-case letters, digits and underscores, not starting with a digit, at
most 63 bytes) before it is quoted into a statement, so conf cannot inject SQL and a typo fails
with the key that holds it. Column types come from a closed list. The statements are saved
through ``stock_ml.io.PostgresStatementsDataset``, which runs them in one transaction.
"""

from __future__ import annotations

import re

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
