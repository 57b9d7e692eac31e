"""The SparkSession of the envs with a ``spark`` config (conf/prod/spark.yml), and only theirs.

Why a hook: kedro-datasets' ``spark.SparkDatasetV2`` never configures a session, it calls
``SparkSession.builder.getOrCreate()``. Creating the session first, from the env's spark.yml,
is what makes that call return ours (master, memory, shuffle partitions, time zone) instead of
Spark's defaults (local[*], 200 shuffle partitions). Static settings (driver memory, Java
options) only count in the first session of a process, so this runs in ``after_context_created``,
before anything can touch the catalog.

Why "only if": the pandas envs (base, dev, test) have no spark config, and must never pay the
10-20 s JVM start, need Java, or even import pyspark. pyspark is imported inside the hook, after
that check.

Where Spark's own files go: the SQL warehouse and Derby home (only created if something uses
tables or Hive, which the pipelines do not) default to ``data/<schema>/spark/`` of the project,
beside the env's other outputs, never the working directory; spark.yml can set its own.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from kedro.config import MissingConfigException
from kedro.framework.hooks import hook_impl

logger = logging.getLogger(__name__)

JAVA_MISSING = (
    "The Spark engine needs Java 17 (or 21) and found no `java` on PATH and no JAVA_HOME. "
    "Install it (Debian/Ubuntu: apt-get install -y openjdk-17-jre-headless) or set JAVA_HOME."
)

# Settings the engine relies on, used when spark.yml does not say otherwise.
DEFAULTS = {
    # pandas writes the silver table's dates as Parquet TIMESTAMP(NANOS), which Spark cannot read
    # as a timestamp ([PARQUET_TYPE_ILLEGAL]); read as a long, the engine converts it exactly
    "spark.sql.legacy.parquet.nanosAsLong": "true",
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.showConsoleProgress": "false",
}


def require_java() -> None:
    """Fail with an actionable message before pyspark's opaque JAVA_GATEWAY_EXITED."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return
    if shutil.which("java") is None:
        raise RuntimeError(JAVA_MISSING)


def prepare_environment() -> None:
    """Environment the JVM and its Python workers must see; each kept if already set.

    Workers run ``python3`` from PATH unless told otherwise (then: no pandas, no stock_ml), and
    Spark warns when the hostname resolves to a loopback address.
    """
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


def session_conf(spark_conf: dict[str, Any], scratch: Path) -> dict[str, str]:
    """spark.yml's settings (strings, as SparkConf wants) over DEFAULTS, plus the scratch dirs."""
    conf = {**DEFAULTS, **{str(k): _text(v) for k, v in spark_conf.items()}}
    conf.setdefault("spark.sql.warehouse.dir", str(scratch / "warehouse"))
    derby = f"-Dderby.system.home={scratch / 'derby'}"
    java_options = conf.get("spark.driver.extraJavaOptions", "")
    if "-Dderby.system.home" not in java_options:
        conf["spark.driver.extraJavaOptions"] = f"{java_options} {derby}".strip()
    return conf


def _text(value: Any) -> str:
    """YAML true/false -> "true"/"false" (Spark's spelling), anything else str()."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def start_session(
    spark_conf: dict[str, Any], scratch: Path, app_name: str, log_level: str = "WARN"
):
    """The process's SparkSession from a spark.yml-shaped dict: the one way this project starts
    Spark (the hook, the test fixture and the benchmark all call it)."""
    require_java()
    prepare_environment()
    conf = session_conf(spark_conf, scratch)

    from pyspark import SparkConf
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.appName(conf.pop("spark.app.name", app_name))
        .config(conf=SparkConf().setAll(list(conf.items())))
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel(conf.get("spark.log.level", log_level))
    return spark


class SparkHooks:
    """Create the env's SparkSession from its ``spark`` config; do nothing without one."""

    @hook_impl
    def after_context_created(self, context) -> None:
        try:
            spark_conf = dict(context.config_loader["spark"] or {})
        except (KeyError, MissingConfigException):
            spark_conf = {}
        if not spark_conf:
            return  # a pandas env: no pyspark import, no JVM
        schema = context.config_loader["globals"].get("schema", context.env or "spark")
        scratch = Path(context.project_path) / "data" / schema / "spark"
        spark = start_session(spark_conf, scratch, context.project_path.name)
        logger.info("Spark session: master %s, Spark %s", spark.sparkContext.master, spark.version)
