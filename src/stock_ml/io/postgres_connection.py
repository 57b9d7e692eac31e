"""The PostgreSQL connection the serving-store datasets share: URL from Kedro credentials,
described with the password hidden, and an engine that is always disposed.

The URL is checked when a dataset is used, not when the catalog is built: every run builds the
catalog, only the runs that touch the serving store need a database.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kedro.io import DatasetError
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL, make_url


def postgres_url(credentials: dict[str, Any] | None) -> URL | None:
    con = (credentials or {}).get("con")
    return make_url(con) if con else None


def described(url: URL | None) -> str | None:
    """The URL as a dataset describes it: never with the password."""
    return url.render_as_string(hide_password=True) if url else None


@contextmanager
def postgres_engine(url: URL | None, where: str = "") -> Iterator[Engine]:
    if url is None:
        raise DatasetError(
            f"{where + ': ' if where else ''}no PostgreSQL URL: set STOCK_ML_POSTGRES_URL "
            "(postgresql+psycopg://user:pass@host:5432/db)"
        )
    engine = create_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()
