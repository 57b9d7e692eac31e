"""Each run's rows shaped as the serving tables declare them: columns, types, keys, run scope."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import yaml

from stock_ml.pipelines.serving_store.nodes import (
    conform_rows,
    data_health_rows,
    predictions_rows,
    quarantine_rows,
)
from stock_ml.runs import run_partition_key
from tests.pipelines.serving_store.test_nodes import REPO

RUN = {"id": "scheduled__2022-03-11T17:00:00+00:00", "date": "2022-03-11"}


@pytest.fixture(scope="module")
def store() -> dict:
    conf = yaml.safe_load((REPO / "conf/base/parameters_serving_store.yml").read_text())
    return {**conf["serving_store"], "schema": "test_stock_data"}


def _prediction(as_of: str, symbol: str, version: int, run_id: str) -> dict:
    return {
        "target_prediction_date": pd.Timestamp(as_of) + pd.Timedelta(days=3),
        "symbol": symbol,
        "as_of_date": pd.Timestamp(as_of),
        "score": 0.7,
        "predicted_up": 1,
        "model_name": "test_stock_ml_direction",
        "model_alias": "champion",
        "model_version": version,
        "mlflow_run_id": "abc",
        "role": "serving",
        "scored_by_run": run_id,
        "scored_at": pd.Timestamp("2022-03-11T17:05:00", tz="UTC"),
        "not_served": "x",
    }


def test_predictions_are_this_runs_rows_in_declared_columns_and_types(store) -> None:
    log = {
        "as_of_date=2022-03-10/model_version=1": lambda: pd.DataFrame(
            [_prediction("2022-03-10", s, 1, "an-earlier-run") for s in ("AAA", "BBB")]
        ),
        "as_of_date=2022-03-11/model_version=1": lambda: pd.DataFrame(
            [_prediction("2022-03-11", s, 1, RUN["id"]) for s in ("AAA", "BBB")]
        ),
    }
    rows = predictions_rows(log, RUN, store)
    assert list(rows.columns) == list(store["tables"]["predictions"]["columns"])
    assert rows["as_of_date"].tolist() == [dt.date(2022, 3, 11)] * 2
    assert rows["symbol"].tolist() == ["AAA", "BBB"]
    assert str(rows["model_version"].dtype) == "Int32"
    assert str(rows["predicted_up"].dtype) == "Int16"
    assert str(rows["scored_at"].dtype).endswith(", UTC]")


def test_an_empty_prediction_log_publishes_no_rows(store) -> None:
    rows = predictions_rows({}, RUN, store)
    assert rows.empty and list(rows.columns) == list(store["tables"]["predictions"]["columns"])


def test_data_health_is_the_runs_partition_stamped_with_run_identity(store) -> None:
    health = pd.DataFrame(
        {
            "symbol": ["AAA"],
            "group": ["warsaw"],
            "status": ["ok"],
            "rows_read": [10],
            "exact_duplicates": [0],
            "quarantined": [1],
            "kept": [9],
            "missing_sessions": pd.array([pd.NA], dtype="Int64"),
            "sessions_behind": pd.array([0], dtype="Int64"),
            "first_date": [pd.Timestamp("2022-03-01")],
            "last_date": [pd.Timestamp("2022-03-11")],
            "expected_last_session": [pd.Timestamp("2022-03-11")],
        }
    )
    partitions = {run_partition_key(RUN): lambda: health, "ingest_date=x/run_id=y": None}
    rows = data_health_rows(partitions, RUN, store)
    assert rows.loc[0, "run_id"] == RUN["id"] and rows.loc[0, "run_date"] == dt.date(2022, 3, 11)
    assert rows["missing_sessions"].isna().tolist() == [True]  # NULL, not 0 or NaN-as-float


def test_a_run_without_its_partition_is_an_error_naming_it(store) -> None:
    with pytest.raises(KeyError, match="silver_quarantine: no partition 'ingest_date=2022-03-11/"):
        quarantine_rows({"ingest_date=2022-03-10/run_id=other": None}, RUN, store)


def test_missing_column_names_the_table_and_columns(store) -> None:
    drift = pd.DataFrame({"run_date": ["2022-03-11"], "kind": ["feature"], "name": ["roc5"]})
    with pytest.raises(
        ValueError, match=r"monitoring_drift: .* lack the columns \['model_name', 'model_v"
    ):
        conform_rows(drift, store, "monitoring_drift")


def test_a_repeated_or_null_primary_key_is_refused(store) -> None:
    row = _prediction("2022-03-11", "AAA", 1, RUN["id"])
    with pytest.raises(ValueError, match=r"2 rows have a null or repeated key"):
        conform_rows(pd.DataFrame([row, row]), store, "predictions")
    with pytest.raises(ValueError, match=r"1 rows have a null or repeated key"):
        conform_rows(pd.DataFrame([{**row, "symbol": None}]), store, "predictions")


def test_an_undeclared_table_is_an_error(store) -> None:
    with pytest.raises(ValueError, match="serving_store.tables.trades: not declared"):
        conform_rows(pd.DataFrame(), store, "trades")
