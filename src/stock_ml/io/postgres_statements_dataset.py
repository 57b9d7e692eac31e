"""Run a list of SQL statements against PostgreSQL in one transaction (save only).

kedro-datasets' SQL datasets write or read a table (pandas.SQLTableDataset, SQLQueryDataset);
none runs DDL. The serving store's schema and tables are created through this one, so the init
step stays a Kedro pipeline (a pure node builds the statements from conf, this saves them) and
its connection comes from Kedro credentials like every other dataset's. All statements commit
together or not at all: a failure leaves the database as it was.
"""

from __future__ import annotations

from typing import Any

from kedro.io import AbstractDataset, DatasetError
from sqlalchemy import text

from stock_ml.io.postgres_connection import described, postgres_engine, postgres_url


class PostgresStatementsDataset(AbstractDataset[list[str], None]):
    def __init__(self, credentials: dict[str, Any] | None, metadata: dict | None = None) -> None:
        self._url = postgres_url(credentials)
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"url": described(self._url)}

    def load(self) -> None:
        raise DatasetError("PostgresStatementsDataset only runs statements (save)")

    def save(self, data: list[str]) -> None:
        with postgres_engine(self._url) as engine, engine.begin() as connection:
            for statement in data:
                connection.execute(text(statement))
