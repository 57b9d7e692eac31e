"""A session-wide local SparkSession for the Spark engine tests.

One per pytest process: static settings (driver memory, Java options) only count in the first
session a process creates, and the JVM start costs 5-20 s. Nothing is skipped: pyspark and Java
17 are CI requirements (pyproject's dev extra, the CI image), so their absence fails loudly.
"""

from __future__ import annotations

import os
import sys
import time

import pytest

from stock_ml.spark import prepare_environment, require_java


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory):
    try:
        require_java()
    except RuntimeError as error:
        pytest.fail(str(error), pytrace=False)
    try:
        from pyspark.sql import SparkSession
    except ImportError as error:  # pragma: no cover - the dev extra installs it
        pytest.fail(f"pyspark is missing ({error}): pip install -e '.[spark]'", pytrace=False)

    prepare_environment()
    # Functions defined in test modules are pickled by reference: let the workers import them.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [p for p in sys.path if p] + [os.environ.get("PYTHONPATH", "")]
    ).rstrip(os.pathsep)
    scratch = tmp_path_factory.mktemp("spark")  # warehouse, Derby, spill: never the cwd
    started = time.perf_counter()
    session = (
        SparkSession.builder.master("local[2]")
        .appName("stock_ml-pytest")
        .config("spark.driver.memory", "1g")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.legacy.parquet.nanosAsLong", "true")  # as conf/prod/spark.yml
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.warehouse.dir", str(scratch / "warehouse"))
        .config("spark.local.dir", str(scratch / "local"))
        .config(
            "spark.driver.extraJavaOptions",
            # the last two halve the JVM start; fine for tests, not for long jobs
            f"-Dderby.system.home={scratch / 'derby'} -XX:+UseSerialGC -XX:TieredStopAtLevel=1",
        )
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    print(f"\nSparkSession started in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    yield session
    session.stop()
