"""PostgresTableDataset against the machine's PostgreSQL (127.0.0.1:5432, database test): a save
replaces the rows of its keys in one transaction, a failure leaves the previous rows, and names
reach SQL quoted. Skipped, saying why, where no PostgreSQL answers; CI's machine runs one."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from kedro.io import DatasetError
from sqlalchemy import create_engine, text

from stock_ml.io import PostgresTableDataset
from tests.postgres import URL, require_postgres

SCHEMA = "io_test_stock_data"


@pytest.fixture
def engine():
    require_postgres()
    engine = create_engine(URL)
    with engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE'))
        connection.execute(text(f'CREATE SCHEMA "{SCHEMA}"'))
        connection.execute(
            text(
                f'CREATE TABLE "{SCHEMA}".drift (run_date date, name text, '
                "psi double precision NOT NULL, rows integer, PRIMARY KEY (run_date, name))"
            )
        )
    yield engine
    with engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE'))
    engine.dispose()


def _dataset(table: str = "drift") -> PostgresTableDataset:
    return PostgresTableDataset(
        schema=SCHEMA, table=table, replace_by=["run_date"], credentials={"con": URL}
    )


def _drift(day: int, names: list[str], psi: float = 0.1) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "run_date": [dt.date(2022, 3, day)] * len(names),
            "name": names,
            "psi": [psi] * len(names),
            "rows": pd.array([100] * len(names), dtype="Int32"),
        }
    )


def _stored(dataset: PostgresTableDataset) -> list[tuple]:
    rows = dataset.load().sort_values(["run_date", "name"])
    return [(str(r.run_date), r.name, r.psi) for r in rows.itertuples()]


def test_rerun_of_a_run_date_replaces_its_rows_and_keeps_other_dates(engine) -> None:
    dataset = _dataset()
    dataset.save(_drift(10, ["a", "b", "c"]))
    dataset.save(_drift(11, ["a", "b"]))
    dataset.save(_drift(11, ["a"], psi=0.5))  # the rerun has fewer rows: b of the 11th goes
    assert _stored(dataset) == [
        ("2022-03-10", "a", 0.1),
        ("2022-03-10", "b", 0.1),
        ("2022-03-10", "c", 0.1),
        ("2022-03-11", "a", 0.5),
    ]


def test_a_failing_write_leaves_the_previous_rows(engine) -> None:
    dataset = _dataset()
    dataset.save(_drift(11, ["a", "b"]))
    bad = _drift(11, ["a", "b"], psi=0.9)
    bad.loc[1, "psi"] = None  # NOT NULL: the insert fails after the delete ran
    with pytest.raises(Exception, match="null value in column"):
        dataset.save(bad)
    assert _stored(dataset) == [("2022-03-11", "a", 0.1), ("2022-03-11", "b", 0.1)]


def test_an_unknown_column_or_table_is_an_error_naming_it(engine) -> None:
    with pytest.raises(DatasetError, match=rf"{SCHEMA}.drift has no columns \['owner'\]"):
        _dataset().save(_drift(11, ["a"]).assign(owner="x"))
    with pytest.raises(DatasetError, match=rf"table {SCHEMA}.nope does not exist: create"):
        _dataset("nope").save(_drift(11, ["a"]))


def test_no_url_is_an_error_and_the_password_is_never_described() -> None:
    with pytest.raises(DatasetError, match="no PostgreSQL URL: set STOCK_ML_POSTGRES_URL"):
        PostgresTableDataset(schema="s", table="t", replace_by=["name"]).save(_drift(1, ["a"]))
    secret = PostgresTableDataset(
        schema="s", table="t", replace_by=["k"], credentials={"con": "postgresql://u:s3cret@h/db"}
    )
    assert "s3cret" not in str(secret) and "@h/db" in str(secret)
