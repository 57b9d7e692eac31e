"""The machine's PostgreSQL for integration tests: skip with the reason where none answers, and
scratch databases, one per test module and run, dropped afterwards (CI's machine runs one on
127.0.0.1:5432). No test writes to the server's own databases: two runs side by side (two
checkouts on one machine) would drop each other's schemas."""

from __future__ import annotations

import os
import secrets
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
def scratch_database(prefix: str) -> Iterator[str]:
    """A new empty database on the test server, named ``prefix`` plus this process and a random
    token (two test runs on one machine never share one); yields its URL, drops it at the end."""
    require_postgres()
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"
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
