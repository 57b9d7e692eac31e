"""`kedro run --pipeline init_serving_store` against the machine's PostgreSQL (127.0.0.1:5432):
the env's schema and tables appear, a second run changes nothing and keeps rows, and a bad name
in conf stops the run before any statement reaches the database.

Skipped, saying why, where no PostgreSQL answers; CI's machine runs one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine, text

from tests.integration.project import BIN, command_env, copy_project, run
from tests.postgres import scratch_database

pytestmark = pytest.mark.slow

SCHEMA = "test_stock_data"


@pytest.fixture(scope="module")
def engine():
    with scratch_database("stock_ml_ci_init") as url:
        engine = create_engine(url)
        yield engine
        engine.dispose()


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return copy_project(tmp_path_factory.mktemp("serving_store") / "project")


def _init(project: Path, engine, check: bool = True):
    args = [str(BIN / "kedro"), "run", "--env", "test", "--pipeline", "init_serving_store"]
    env = command_env(STOCK_ML_POSTGRES_URL=engine.url.render_as_string(hide_password=False))
    if check:
        return run(args, cwd=project, env=env)
    import subprocess

    return subprocess.run(args, cwd=project, env=env, capture_output=True, text=True, check=False)


def _tables(engine) -> dict[str, list[str]]:
    query = text(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = :schema ORDER BY table_name, ordinal_position"
    )
    with engine.connect() as connection:
        rows = connection.execute(query, {"schema": SCHEMA}).all()
    tables: dict[str, list[str]] = {}
    for table, column in rows:
        tables.setdefault(table, []).append(column)
    return tables


def test_init_creates_the_envs_schema_and_tables_then_changes_nothing(project, engine) -> None:
    conf = yaml.safe_load((project / "conf/base/parameters_serving_store.yml").read_text())
    declared = {t: list(spec["columns"]) for t, spec in conf["serving_store"]["tables"].items()}
    _init(project, engine)
    assert _tables(engine) == declared
    with engine.begin() as connection:
        connection.execute(
            text(
                f'INSERT INTO "{SCHEMA}".predictions (target_prediction_date, symbol, '
                "model_version, score) VALUES ('2022-03-01', 'AAA', 1, 0.7)"
            )
        )
    _init(project, engine)  # idempotent: same tables, the row survives
    assert _tables(engine) == declared
    with engine.connect() as connection:
        kept = connection.execute(text(f'SELECT symbol, score FROM "{SCHEMA}".predictions')).all()
    assert kept == [("AAA", 0.7)]


def test_a_bad_name_in_conf_stops_before_the_database(project, engine) -> None:
    with engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE'))
    override = project / "conf/test/parameters_serving_store.yml"
    override.write_text(
        yaml.safe_dump(
            {"serving_store": {"tables": {"bad": {"columns": {"x; DROP SCHEMA public": "text"}}}}}
        )
    )
    try:
        result = _init(project, engine, check=False)
    finally:
        override.unlink()
    assert result.returncode != 0
    assert "is not a valid SQL identifier" in result.stdout + result.stderr
    assert _tables(engine) == {}, "nothing was created: the DDL is checked before it runs"
