"""The prod profile on real services: `make init-prod` then `kedro run --env prod` with Spark, the
serving tables in PostgreSQL schema prod_stock_data and an MLflow tracking server whose backend
store is PostgreSQL (started here as `make mlflow-server` starts it). Then: a rerun of the run's
publish step replaces its rows, and dev and test runs side by side write their own schemas and
leave prod_stock_data as it was.

Offline: prod reads Yahoo, here the bundled sample (``ingest.source.kind=csv_folder``); the quick
search profile; and ``when_no_champion=bootstrap`` so the first model serves and every table
gets rows (prod's own gates reject it on this sample, see the closing note of issue #7).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import mlflow
import pytest
import yaml
from sqlalchemy import create_engine, text

from tests.integration.airflow_stack import free_port
from tests.integration.project import BIN, REPO, command_env, copy_project, run
from tests.postgres import scratch_database

pytestmark = pytest.mark.slow

TABLES = ["predictions", "performance_log", "monitoring_drift", "data_health", "quarantine"]
RUN_ID = "prod_check__2022-08-30"
# Trust auth ignores it; the runs must never print it.
PASSWORD = "n0t-l0gged-s3cret"
PROD_PARAMS = (
    f"run_id={RUN_ID},ingest.source.kind=csv_folder,search_profile=quick,"
    "promotion.when_no_champion=bootstrap"
)


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    """A scratch database for the serving store, one for MLflow, and the MLflow server."""
    root = tmp_path_factory.mktemp("prod_profile")
    with (
        scratch_database("stock_ml_ci_serving") as serving_url,
        scratch_database("stock_ml_ci_mlflow") as mlflow_backend,
    ):
        port = free_port()
        log = (root / "mlflow_server.log").open("w")
        # the documented command (make mlflow-server), in a process group stopped as one
        server = subprocess.Popen(
            [
                "make", "-C", str(REPO), "mlflow-server",
                f"MLFLOW_PORT={port}", f"MLFLOW_ARTIFACTS={root / 'mlartifacts'}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=command_env(STOCK_ML_MLFLOW_BACKEND_URI=mlflow_backend),
            start_new_session=True,
        )  # fmt: skip
        tracking_uri = f"http://127.0.0.1:{port}"
        try:
            _wait_for(f"{tracking_uri}/health", server, root / "mlflow_server.log")
            secret_url = serving_url.replace("postgres@", f"postgres:{PASSWORD}@")
            yield {"serving_url": secret_url, "tracking_uri": tracking_uri, "root": root}
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)
            with contextlib.suppress(ProcessLookupError):  # what make started goes with it
                os.killpg(server.pid, signal.SIGKILL)
            log.close()


def _wait_for(url: str, process: subprocess.Popen, log: Path, seconds: int = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"mlflow server exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - localhost
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"mlflow server not ready after {seconds} s:\n{log.read_text()[-3000:]}")


def _kedro(project: Path, services: dict, *args: str):
    env = command_env(
        STOCK_ML_POSTGRES_URL=services["serving_url"], MLFLOW_TRACKING_URI=services["tracking_uri"]
    )
    result = run([str(BIN / "kedro"), "run", *args], cwd=project, env=env, timeout=1200)
    assert PASSWORD not in result.stdout + result.stderr, "a credential reached the log"
    return result


def _snapshot(engine, schema: str) -> dict[str, tuple[int, str]]:
    """Row count and a checksum of every row, per table of ``schema``."""
    snapshot = {}
    with engine.connect() as connection:
        for table in TABLES:
            rows = connection.execute(text(f'SELECT t::text FROM "{schema}"."{table}" t')).all()
            digest = hashlib.sha256("\n".join(sorted(r[0] for r in rows)).encode()).hexdigest()
            snapshot[table] = (len(rows), digest)
    return snapshot


@pytest.fixture(scope="module")
def prod_run(services, tmp_path_factory) -> dict:
    project = copy_project(tmp_path_factory.mktemp("prod_project") / "project")
    _kedro(project, services, "--env", "prod", "--pipeline", "init_serving_store")  # make init-prod
    started = time.monotonic()
    result = _kedro(project, services, "--env", "prod", "--params", PROD_PARAMS)
    wall = time.monotonic() - started
    print(f"kedro run --env prod: {wall:.1f} s wall")
    engine = create_engine(services["serving_url"])
    yield {"project": project, "engine": engine, "log": result.stdout + result.stderr}
    engine.dispose()


def test_prod_run_uses_spark_and_fills_prod_stock_data(prod_run) -> None:
    assert "Spark session: master local[2]" in prod_run["log"]
    counts = {
        table: n for table, (n, _) in _snapshot(prod_run["engine"], "prod_stock_data").items()
    }
    assert counts["data_health"] == 18  # one row per symbol of the bundled sample
    assert counts["quarantine"] == 0  # the sample is clean
    assert counts["predictions"] > 0 and counts["predictions"] % 18 == 0
    assert counts["performance_log"] > 0 and counts["monitoring_drift"] > 0
    with prod_run["engine"].connect() as connection:
        scored = connection.execute(
            text("SELECT DISTINCT scored_by_run, role FROM prod_stock_data.predictions")
        ).all()
        health = connection.execute(
            text("SELECT DISTINCT run_id, status FROM prod_stock_data.data_health")
        ).all()
    assert scored == [(RUN_ID, "serving")]
    assert {run_id for run_id, _ in health} == {RUN_ID}
    # nothing of prod's serving rows or MLflow store went to local files
    data = prod_run["project"] / "data" / "prod_stock_data"
    assert not (data / "09_serving").exists() and not (data / "mlflow.db").exists()


def test_the_model_is_in_the_tracking_servers_registry(prod_run, services) -> None:
    client = mlflow.MlflowClient(tracking_uri=services["tracking_uri"])
    champion = client.get_model_version_by_alias("prod_stock_ml_direction", "champion")
    assert champion.version == "1"
    run = client.get_run(champion.run_id)
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")  # served by the server
    assert run.info.run_name == RUN_ID  # the run's identity names its MLflow run
    logged = client.get_logged_model(champion.source.removeprefix("models:/"))
    assert logged.artifact_location.startswith("mlflow-artifacts:/")
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=logged.artifact_location,
        dst_path=str(services["root"] / "download"),
        tracking_uri=services["tracking_uri"],
    )
    assert list(Path(local).rglob("MLmodel")), "the model's files come back through the server"
    stored = list((services["root"] / "mlartifacts").rglob("MLmodel"))
    assert stored, "the server keeps the artifacts under its artifacts destination"


def test_rerunning_the_publish_step_replaces_the_runs_rows(prod_run, services) -> None:
    before = _snapshot(prod_run["engine"], "prod_stock_data")
    _kedro(
        prod_run["project"],
        services,
        "--env",
        "prod",
        "--pipeline",
        "publish",
        "--params",
        f"run_id={RUN_ID}",
    )
    assert _snapshot(prod_run["engine"], "prod_stock_data") == before


def test_dev_and_test_side_by_side_leave_prod_stock_data_untouched(
    prod_run, services, tmp_path_factory
) -> None:
    """dev and test get prod's serving entries (their schema from their own globals) and run at
    the same time; each writes its own schema, prod_stock_data keeps every row."""
    project = copy_project(tmp_path_factory.mktemp("side_by_side") / "project")
    prod_catalog = yaml.safe_load((project / "conf" / "prod" / "catalog.yml").read_text())
    serving = {
        name: entry
        for name, entry in prod_catalog.items()
        if name.startswith("serving_") and name != "serving_store_schema"
    }
    for env in ("dev", "test"):
        (project / "conf" / env / "catalog_serving.yml").write_text(yaml.safe_dump(serving))
    before = _snapshot(prod_run["engine"], "prod_stock_data")
    for env in ("dev", "test"):
        _kedro(project, services, "--env", env, "--pipeline", "init_serving_store")
    env = command_env(
        STOCK_ML_POSTGRES_URL=services["serving_url"], MLFLOW_TRACKING_URI=services["tracking_uri"]
    )
    runs = {
        name: subprocess.Popen(
            [
                str(BIN / "kedro"),
                "run",
                "--env",
                name,
                "--pipeline",
                "backfill",
                "--params",
                f"run_id={name}_side_by_side",
            ],
            cwd=project,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in ("dev", "test")
    }
    for name, process in runs.items():
        output, _ = process.communicate(timeout=900)
        assert process.returncode == 0, f"{name} run failed:\n{output[-4000:]}"
    assert _snapshot(prod_run["engine"], "prod_stock_data") == before
    with prod_run["engine"].connect() as connection:
        for name, symbols in (("dev", 18), ("test", 6)):
            rows = connection.execute(
                text(f'SELECT run_id, count(*) FROM "{name}_stock_data".data_health GROUP BY 1')
            ).all()
            assert rows == [(f"{name}_side_by_side", symbols)], name
    shutil.rmtree(project)
