"""The machine's PostgreSQL for integration tests: skip with the reason where none answers, and
scratch databases that are dropped afterwards (CI's machine runs one on 127.0.0.1:5432)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

URL = os.environ.get(
    "STOCK_ML_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def require_postgres() -> None:
    engine = create_engine(URL)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as error:
        pytest.skip(f"no PostgreSQL at {URL} ({str(error).splitlines()[0]})")
    finally:
        engine.dispose()


@contextmanager
def scratch_database(name: str) -> Iterator[str]:
    """A new empty database ``name`` on the test server; yields its URL, drops it at the end."""
    require_postgres()
    admin = create_engine(URL, isolation_level="AUTOCOMMIT")
    drop = text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    with admin.connect() as connection:
        connection.execute(drop)
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(drop)
        admin.dispose()
