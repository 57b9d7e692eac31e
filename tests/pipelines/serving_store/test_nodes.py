"""The serving store's DDL from conf: every name checked before it is quoted into SQL."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stock_ml.pipelines.serving_store.nodes import serving_store_ddl, sql_identifier

REPO = Path(__file__).resolve().parents[3]


def _store(**tables) -> dict:
    return {"schema": "test_stock_data", "tables": tables}


def test_schema_then_one_table_per_entry_all_if_not_exists() -> None:
    store = _store(
        predictions={
            "columns": {"symbol": "text", "as_of_date": "date", "score": "double precision"},
            "primary_key": ["as_of_date", "symbol"],
        }
    )
    assert serving_store_ddl(store) == [
        'CREATE SCHEMA IF NOT EXISTS "test_stock_data"',
        'CREATE TABLE IF NOT EXISTS "test_stock_data"."predictions" (\n'
        '  "symbol" text,\n'
        '  "as_of_date" date,\n'
        '  "score" double precision,\n'
        '  PRIMARY KEY ("as_of_date", "symbol")\n'
        ")",
    ]


@pytest.mark.parametrize(
    "name",
    ["Prod", "1st", "a-b", "x; DROP TABLE t", 'a"b', "", "a" * 64, None, 7],
)
def test_a_name_that_is_not_a_plain_identifier_is_refused(name) -> None:
    with pytest.raises(
        ValueError, match=r"serving_store\.schema: .* is not a valid SQL identifier"
    ):
        serving_store_ddl({"schema": name, "tables": {"t": {"columns": {"a": "text"}}}})
    assert sql_identifier("a" * 63, "x") == f'"{"a" * 63}"'


def test_each_part_of_a_table_is_checked_and_named_in_the_error() -> None:
    cases = {
        r"tables\.t\.columns: 'Bad' is not": {"columns": {"Bad": "text"}, "primary_key": ["Bad"]},
        r"tables\.t\.columns\.a: type 'varchar; --' is not one of": {
            "columns": {"a": "varchar; --"},
            "primary_key": ["a"],
        },
        r"tables\.t\.primary_key: needs columns of the table, got \['b'\] \(unknown: \['b'\]\)": {
            "columns": {"a": "text"},
            "primary_key": ["b"],
        },
        r"tables\.t\.primary_key: needs columns of the table, got \[\]": {"columns": {"a": "text"}},
        r"tables\.t: no columns": {"columns": {}},
    }
    for message, spec in cases.items():
        with pytest.raises(ValueError, match=message):
            serving_store_ddl(_store(t=spec))
    with pytest.raises(ValueError, match=r"serving_store\.tables: '1t' is not"):
        serving_store_ddl(_store(**{"1t": {"columns": {"a": "text"}, "primary_key": ["a"]}}))
    with pytest.raises(ValueError, match=r"serving_store\.tables: no tables declared"):
        serving_store_ddl(_store())


def test_the_shipped_conf_builds() -> None:
    conf = yaml.safe_load((REPO / "conf/base/parameters_serving_store.yml").read_text())
    store = {**conf["serving_store"], "schema": "prod_stock_data"}
    statements = serving_store_ddl(store)
    assert len(statements) == 1 + len(store["tables"])
    assert {"predictions", "performance_log", "monitoring_drift", "data_health", "quarantine"} == {
        name for name in store["tables"]
    }
