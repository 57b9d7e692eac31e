"""PostgresTableDataset against the machine's PostgreSQL (127.0.0.1:5432, database test): a save
replaces the rows of its keys in one transaction, a failure leaves the previous rows, and names
reach SQL quoted. Skipped, saying why, where no PostgreSQL answers; CI's machine runs one."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from kedro.io import DatasetError
from sqlalchemy import create_engine, text

from stock_ml.io import PostgresTableDataset
from stock_ml.pipelines.serving_store.nodes import conform_rows, serving_store_ddl
from tests.postgres import scratch_database

SCHEMA = "io_test_stock_data"


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    with scratch_database("stock_ml_ci_io") as url:
        yield url


@pytest.fixture
def engine(database_url: str):
    engine = create_engine(database_url)
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


def _url(engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def _dataset(engine, table: str = "drift") -> PostgresTableDataset:
    return PostgresTableDataset(
        schema=SCHEMA, table=table, replace_by=["run_date"], credentials={"con": _url(engine)}
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
    dataset = _dataset(engine)
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
    dataset = _dataset(engine)
    dataset.save(_drift(11, ["a", "b"]))
    bad = _drift(11, ["a", "b"], psi=0.9)
    bad.loc[1, "psi"] = None  # NOT NULL: the insert fails after the delete ran
    with pytest.raises(Exception, match="null value in column"):
        dataset.save(bad)
    assert _stored(dataset) == [("2022-03-11", "a", 0.1), ("2022-03-11", "b", 0.1)]


def test_an_unknown_column_or_table_is_an_error_naming_it(engine) -> None:
    with pytest.raises(DatasetError, match=rf"{SCHEMA}.drift has no columns \['owner'\]"):
        _dataset(engine).save(_drift(11, ["a"]).assign(owner="x"))
    with pytest.raises(DatasetError, match=rf"table {SCHEMA}.nope does not exist: create"):
        _dataset(engine, "nope").save(_drift(11, ["a"]))


def test_no_url_is_an_error_and_the_password_is_never_described() -> None:
    with pytest.raises(DatasetError, match="no PostgreSQL URL: set STOCK_ML_POSTGRES_URL"):
        PostgresTableDataset(schema="s", table="t", replace_by=["name"]).save(_drift(1, ["a"]))
    secret = PostgresTableDataset(
        schema="s", table="t", replace_by=["k"], credentials={"con": "postgresql://u:s3cret@h/db"}
    )
    assert "s3cret" not in str(secret) and "@h/db" in str(secret)


def _conf(*parts: str) -> dict:
    import yaml

    return yaml.safe_load(Path(__file__).parents[2].joinpath("conf", *parts).read_text())


def _predictions(day: int, version: int, scores: dict[str, float], run: str) -> pd.DataFrame:
    as_of = pd.Timestamp(2022, 3, day)
    return pd.DataFrame(
        {
            "target_prediction_date": as_of + pd.offsets.BDay(5),
            "symbol": list(scores),
            "model_version": version,
            "as_of_date": as_of,
            "model_name": "prod_stock_ml_direction",
            "model_alias": "champion",
            "role": "serving",
            "score": list(scores.values()),
            "predicted_up": [int(s >= 0.5) for s in scores.values()],
            "mlflow_run_id": f"r{version}",
            "scored_by_run": run,
            "scored_at": pd.Timestamp("2022-03-11T18:00:00Z"),
        }
    )


def test_a_narrowed_publish_of_predictions_keeps_the_other_symbols_rows(engine) -> None:
    """prod's serving_predictions as conf/prod/catalog.yml declares it (replace_by as_of_date,
    model_version, symbol), on the table parameters_serving_store.yml declares: a run narrowed
    to AAA replaces (D, N, AAA) and leaves (D, N, BBB) and (D, other N, AAA)."""
    store = {**_conf("base", "parameters_serving_store.yml")["serving_store"], "schema": SCHEMA}
    with engine.begin() as connection:
        for statement in serving_store_ddl(store):
            connection.execute(text(statement))
    entry = _conf("prod", "catalog.yml")["serving_predictions"]
    assert entry["replace_by"] == ["as_of_date", "model_version", "symbol"]
    dataset = PostgresTableDataset(
        schema=SCHEMA,
        table=entry["table"],
        replace_by=entry["replace_by"],
        credentials={"con": _url(engine)},
    )

    def publish(frame: pd.DataFrame) -> None:
        dataset.save(conform_rows(frame, store, "predictions"))

    publish(_predictions(11, 1, {"AAA": 0.4, "BBB": 0.6}, "full"))
    publish(_predictions(11, 2, {"AAA": 0.7, "BBB": 0.2}, "full"))
    publish(_predictions(11, 1, {"AAA": 0.45}, "narrowed"))
    rows = dataset.load().sort_values(["model_version", "symbol"])
    assert [(r.model_version, r.symbol, r.score, r.scored_by_run) for r in rows.itertuples()] == [
        (1, "AAA", 0.45, "narrowed"),
        (1, "BBB", 0.6, "full"),
        (2, "AAA", 0.7, "full"),
        (2, "BBB", 0.2, "full"),
    ]
    assert set(rows["as_of_date"].astype(str)) == {"2022-03-11"}
