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

from stock_ml.spark import start_session

# As conf/prod/spark.yml where it matters (arrow, UTC, nanosAsLong comes from stock_ml.spark's
# defaults), sized for tests. The last two Java options halve the JVM start: fine for tests only.
TEST_SPARK_CONF = {
    "spark.master": "local[2]",
    "spark.driver.memory": "1g",
    "spark.sql.shuffle.partitions": 2,
    "spark.default.parallelism": 2,
    "spark.sql.execution.arrow.pyspark.enabled": True,
    "spark.ui.enabled": False,
    "spark.driver.extraJavaOptions": "-XX:+UseSerialGC -XX:TieredStopAtLevel=1",
}


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory):
    try:
        import pyspark  # noqa: F401
    except ImportError as error:  # pragma: no cover - the dev extra installs it
        pytest.fail(f"pyspark is missing ({error}): pip install -e '.[spark]'", pytrace=False)

    # Functions defined in test modules are pickled by reference: let the workers import them.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [p for p in sys.path if p] + [os.environ.get("PYTHONPATH", "")]
    ).rstrip(os.pathsep)
    scratch = tmp_path_factory.mktemp("spark")  # warehouse, Derby, spill: never the cwd
    started = time.perf_counter()
    try:
        session = start_session(
            {**TEST_SPARK_CONF, "spark.local.dir": str(scratch / "local")},
            scratch,
            "stock_ml-pytest",
            log_level="ERROR",
        )
    except RuntimeError as error:  # no Java: say so, never skip
        pytest.fail(str(error), pytrace=False)
    print(f"\nSparkSession started in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    yield session
    session.stop()
