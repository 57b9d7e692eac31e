"""Credentials come from conf/local (git-ignored) or the environment; other config never from
conf/local. Run through the project's settings, as a KedroSession loads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from stock_ml import settings


def _loader(conf: Path, env: str = "prod"):
    return settings.CONFIG_LOADER_CLASS(str(conf), env=env, **settings.CONFIG_LOADER_ARGS)


def test_the_serving_store_url_comes_from_the_environment(conf, monkeypatch) -> None:
    monkeypatch.setenv("STOCK_ML_POSTGRES_URL", "postgresql+psycopg://from-env@h/db")
    assert _loader(conf)["credentials"]["serving_store"]["con"] == (
        "postgresql+psycopg://from-env@h/db"
    )
    monkeypatch.delenv("STOCK_ML_POSTGRES_URL")
    assert _loader(conf)["credentials"]["serving_store"]["con"] is None


def test_conf_local_credentials_are_read_for_every_run_env(conf, monkeypatch) -> None:
    monkeypatch.setenv("STOCK_ML_POSTGRES_URL", "postgresql+psycopg://from-env@h/db")
    (conf / "local" / "credentials.yml").write_text(
        "serving_store:\n  con: postgresql+psycopg://from-local:pw@h/db\n"
        "extra_service:\n  token: abc\n"
    )
    for env in ("dev", "test", "prod"):
        credentials = _loader(conf, env)["credentials"]
        assert credentials["serving_store"]["con"] == "postgresql+psycopg://from-local:pw@h/db"
        assert credentials["extra_service"] == {"token": "abc"}


def test_conf_local_holds_credentials_only(conf) -> None:
    (conf / "local" / "parameters.yml").write_text("decision_threshold: 0.9\n")
    assert _loader(conf)["parameters"]["decision_threshold"] == 0.5


def test_prod_spark_master_is_local_unless_the_environment_names_a_cluster(
    conf, monkeypatch
) -> None:
    monkeypatch.delenv("STOCK_ML_SPARK_MASTER", raising=False)
    assert _loader(conf)["spark"]["spark.master"] == "local[2]"
    monkeypatch.setenv("STOCK_ML_SPARK_MASTER", "spark://spark-master:7077")
    assert _loader(conf)["spark"]["spark.master"] == "spark://spark-master:7077"


def test_prod_tracks_to_a_server_named_by_the_environment(conf, monkeypatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert _loader(conf)["mlflow"]["server"]["mlflow_tracking_uri"] == "http://127.0.0.1:5000"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://mlflow.internal")
    assert _loader(conf)["mlflow"]["server"]["mlflow_tracking_uri"] == "https://mlflow.internal"
    # dev keeps its own SQLite store whatever the environment says
    assert _loader(conf, "dev")["mlflow"]["server"]["mlflow_tracking_uri"] == (
        "sqlite:///data/dev_stock_data/mlflow.db"
    )


@pytest.mark.parametrize(
    ("runtime_params", "name"),
    [
        (
            {"run_id": "scheduled__x", "airflow_task_id": "score-latest-sessions"},
            "score-latest-sessions",
        ),
        ({"run_id": "simulated__2022-03-01__daily"}, "simulated__2022-03-01__daily"),
        ({}, None),  # kedro-mlflow names it after the pipeline
    ],
)
def test_mlflow_run_name_follows_the_run_identity(conf, runtime_params, name) -> None:
    loader = settings.CONFIG_LOADER_CLASS(
        str(conf), env="test", runtime_params=runtime_params, **settings.CONFIG_LOADER_ARGS
    )
    assert loader["mlflow"]["tracking"]["run"]["name"] == name


@pytest.mark.parametrize(
    "runtime_params",
    [
        "symbols=AAA CCC",  # kedro run --params "symbols=AAA CCC"
        "symbols=[AAA CCC]",
        "symbols=aaa ccc,exchange_groups=warsaw",
        {"symbols": ["AAA", "CCC"]},  # an Airflow Param: a list, passed on intact
    ],
)
def test_a_run_scope_from_the_cli_or_airflow_narrows_the_universe(conf, runtime_params) -> None:
    from kedro.framework.cli.utils import _split_params

    from stock_ml.universe import scope_symbols

    if isinstance(runtime_params, str):  # what kedro's CLI makes of --params
        runtime_params = _split_params(None, None, runtime_params)
    loader = settings.CONFIG_LOADER_CLASS(
        str(conf), env="test", runtime_params=runtime_params, **settings.CONFIG_LOADER_ARGS
    )
    params = loader["parameters"]
    assert scope_symbols(params["universe"], params["run"]) == frozenset({"AAA", "CCC"})
    whole = _loader(conf, "test")["parameters"]
    assert (whole["run"]["symbols"], whole["run"]["exchange_groups"]) == (None, None)
    assert scope_symbols(whole["universe"], whole["run"]) is None
