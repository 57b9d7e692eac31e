"""One serving table in PostgreSQL, written so that a rerun replaces its own rows (load and save).

kedro-datasets' ``pandas.SQLTableDataset`` writes with ``DataFrame.to_sql``: ``replace`` drops the
whole table, ``append`` duplicates a rerun's rows, and neither runs in one transaction with a
delete. Serving tables need "these run dates' rows, replaced": this dataset deletes the rows
whose ``replace_by`` columns match any key in the saved frame and inserts the frame, in one
transaction. A rerun of a run date replaces its rows; a failure (a bad value, a lost connection)
rolls back and leaves the previous rows. The table is reflected from the database (created by the
``init_serving_store`` pipeline), so every identifier reaches SQL quoted by SQLAlchemy and a column
the table lacks is an error naming it, not a silently dropped value.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from kedro.io import AbstractDataset, DatasetError
from sqlalchemy import MetaData, Table, delete, insert, select, tuple_
from sqlalchemy.exc import NoSuchTableError

from stock_ml.io.postgres_connection import described, postgres_engine, postgres_url


class PostgresTableDataset(AbstractDataset[pd.DataFrame, pd.DataFrame]):
    def __init__(
        self,
        schema: str,
        table: str,
        replace_by: list[str],
        credentials: dict[str, Any] | None = None,
        metadata: dict | None = None,
    ) -> None:
        if not replace_by:
            raise DatasetError(f"{schema}.{table}: replace_by needs at least one column")
        self._url = postgres_url(credentials)
        self._schema = schema
        self._table = table
        self._replace_by = list(replace_by)
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        table = f"{self._schema}.{self._table}"
        return {"table": table, "replace_by": self._replace_by, "url": described(self._url)}

    def _engine(self):
        return postgres_engine(self._url, f"{self._schema}.{self._table}")

    def _reflect(self, connection) -> Table:
        try:
            return Table(self._table, MetaData(), schema=self._schema, autoload_with=connection)
        except NoSuchTableError as error:
            raise DatasetError(
                f"table {self._schema}.{self._table} does not exist: create the env's serving "
                "store first (make init-prod, or kedro run --env <env> --pipeline "
                "init_serving_store)"
            ) from error

    def load(self) -> pd.DataFrame:
        with self._engine() as engine, engine.connect() as connection:
            return pd.read_sql(select(self._reflect(connection)), connection)

    def save(self, data: pd.DataFrame) -> None:
        where = f"{self._schema}.{self._table}"
        missing_keys = [column for column in self._replace_by if column not in data.columns]
        if missing_keys:
            raise DatasetError(f"{where}: rows lack the replace_by columns {missing_keys}")
        # Python objects, NULL for every missing value (NaN, NaT, pd.NA): what the driver takes.
        rows = data.astype(object).where(data.notna(), None)
        keys = rows[self._replace_by].drop_duplicates()
        with self._engine() as engine, engine.begin() as connection:
            table = self._reflect(connection)
            unknown = sorted(set(rows.columns) - set(table.columns.keys()))
            if unknown:
                raise DatasetError(f"{where} has no columns {unknown}")
            if len(keys):
                key_columns = tuple_(*(table.columns[name] for name in self._replace_by))
                key_values = list(keys.itertuples(index=False, name=None))
                connection.execute(delete(table).where(key_columns.in_(key_values)))
            if len(rows):
                connection.execute(insert(table), rows.to_dict("records"))
