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
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


class PostgresStatementsDataset(AbstractDataset[list[str], None]):
    def __init__(self, credentials: dict[str, Any] | None, metadata: dict | None = None) -> None:
        # Checked on save, not here: every run builds the catalog, only the init step needs this.
        con = (credentials or {}).get("con")
        self._url = make_url(con) if con else None
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        # never the password: the URL rendered with it hidden
        return {"url": self._url.render_as_string(hide_password=True) if self._url else None}

    def load(self) -> None:
        raise DatasetError("PostgresStatementsDataset only runs statements (save)")

    def save(self, data: list[str]) -> None:
        if self._url is None:
            raise DatasetError(
                "no PostgreSQL URL: set STOCK_ML_POSTGRES_URL "
                "(postgresql+psycopg://user:pass@host:5432/db)"
            )
        engine = create_engine(self._url)
        try:
            with engine.begin() as connection:
                for statement in data:
                    connection.execute(text(statement))
        finally:
            engine.dispose()
