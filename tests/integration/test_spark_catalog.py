"""conf/prod's catalog alone switches the gold feature engine to Spark, with the same result.

A scratch env ``spark_check`` holds conf/prod's catalog.yml and spark.yml verbatim, plus the test
env's parameters (the seeded synthetic universe, no network). ``kedro run`` of ingest, silver and
feature_store there and in the test env must give the same gold features and model input: only
the catalog differs, so the same node code ran on Spark in one and on pandas in the other. And
the pandas envs never import pyspark, so they never start a JVM.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.integration.project import BIN, command_env, copy_project, run

pytestmark = pytest.mark.slow

RUN_ID = "s1"
PIPELINES = "ingest,silver,feature_store"
SPARK_ENV, SPARK_SCHEMA = "spark_check", "spark_check_stock_data"
KEYS = ["symbol", "date"]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Scratch project after the same run in the spark_check env and in the test env."""
    project = copy_project(tmp_path_factory.mktemp("spark_catalog") / "project")
    conf = project / "conf"
    env = conf / SPARK_ENV
    env.mkdir()
    for name in ("catalog.yml", "spark.yml"):
        shutil.copy(conf / "prod" / name, env / name)
    for parameters in (conf / "test").glob("parameters*.yml"):
        shutil.copy(parameters, env / parameters.name)
    (env / "globals.yml").write_text(f"env: {SPARK_ENV}\nschema: {SPARK_SCHEMA}\n")
    for kedro_env in (SPARK_ENV, "test"):
        args = ["run", "--env", kedro_env, "--pipelines", PIPELINES, "--params", f"run_id={RUN_ID}"]
        run([str(BIN / "kedro"), *args], cwd=project)
    return project


def _table(project: Path, schema: str, name: str) -> pd.DataFrame:
    """A gold table as pandas reads it, rows sorted by key, datetimes at one resolution.

    Spark writes micro-second timestamps, which pandas reads as datetime64[us]; the pandas
    engine's files hold datetime64[ns]. Same instants, so both are compared as ns.
    """
    table = pd.read_parquet(project / "data" / schema / "04_gold" / f"{name}.parquet")
    for column in table.columns:
        if pd.api.types.is_datetime64_dtype(table[column]):
            table[column] = table[column].astype("datetime64[ns]")
    return table.sort_values(KEYS, ignore_index=True)


@pytest.mark.parametrize("name", ["features", "model_input"])
def test_spark_env_gold_equals_pandas_env_gold(project: Path, name: str):
    spark_dir = project / "data" / SPARK_SCHEMA / "04_gold" / "features.parquet"
    assert spark_dir.is_dir() and (spark_dir / "_SUCCESS").exists(), "Spark did not write gold"
    spark = _table(project, SPARK_SCHEMA, name)
    pandas = _table(project, "test_stock_data", name)

    assert sorted(spark.columns) == sorted(pandas.columns)
    spark = spark[pandas.columns]  # ignore column order
    pd.testing.assert_frame_equal(spark[KEYS], pandas[KEYS])
    pd.testing.assert_frame_equal(spark, pandas, check_exact=False, rtol=0, atol=1e-9)
    floats = pandas.select_dtypes("float64").columns
    a, b = spark[floats].to_numpy(), pandas[floats].to_numpy()
    assert np.array_equal(np.isnan(a), np.isnan(b))
    assert np.array_equal(a.view(np.int64), b.view(np.int64)), "not bit-exact"


def test_spark_env_read_the_silver_version_written_in_the_same_run(project: Path):
    """silver_prices@engine (SparkDatasetV2, versioned) resolved its version after
    silver_prices@pandas saved it: on this first run, no other version existed to be read."""
    versions = sorted((project / "data" / SPARK_SCHEMA / "03_silver" / "prices.parquet").iterdir())
    assert len(versions) == 1
    silver = pd.read_parquet(versions[0] / "prices.parquet")
    gold = _table(project, SPARK_SCHEMA, "features")
    assert len(gold) == len(silver)


def test_pandas_envs_never_start_a_jvm(project: Path):
    """Loading a pandas env's context (every hook, the catalog) starts no Spark, hence no Java.

    Not "pyspark is never imported": mlflow (loaded by kedro-mlflow's hook) imports pyspark
    itself when it is installed. What costs seconds and needs Java is the gateway/JVM.
    """
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from kedro.framework.session import KedroSession\n"
        "from kedro.framework.startup import bootstrap_project\n"
        "bootstrap_project(Path.cwd())\n"
        "for env in ('test', 'dev'):\n"
        "    with KedroSession.create(env=env) as session:\n"
        "        session.load_context().catalog\n"
        "assert 'stock_ml.pipelines.feature_store.spark_engine' not in sys.modules\n"
        "if 'pyspark' in sys.modules:\n"
        "    from pyspark import SparkContext\n"
        "    assert SparkContext._gateway is None, 'a JVM was started'\n"
        "    assert SparkContext._active_spark_context is None\n"
        "print('no JVM')\n"
    )
    result = subprocess.run(
        [str(BIN / "python"), "-c", code],
        cwd=project,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "no JVM" in result.stdout
