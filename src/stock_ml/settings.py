"""Kedro project settings.

Config is merged softly (nested keys of an env override only what they name), so conf/<env>
holds just what differs from conf/base. ``run_stamp`` gives manual runs a run id; Airflow passes
its own run id as a runtime param instead; ``today`` is the run date of a manual run.
"""

from omegaconf.resolvers import oc

from stock_ml.config_loader import StockMLConfigLoader
from stock_ml.config_resolvers import code_version, now, run_stamp, today
from stock_ml.hooks import AirflowParentRunHook, RunSummaryHook
from stock_ml.spark import SparkHooks

# SparkHooks starts a SparkSession only in envs with a spark config (conf/prod/spark.yml).
# AirflowParentRunHook nests each Airflow task's MLflow run under one run per DAG run.
HOOKS = (RunSummaryHook(), SparkHooks(), AirflowParentRunHook())

# OmegaConfigLoader that also reads credentials from conf/local (see stock_ml.config_loader).
CONFIG_LOADER_CLASS = StockMLConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "dev",
    "config_patterns": {
        "airflow": ["airflow*", "airflow/**"],
        "mlflow": ["mlflow*", "mlflow/**"],
        "spark": ["spark*", "spark*/**"],
    },
    "merge_strategy": {"parameters": "soft", "airflow": "soft", "mlflow": "soft"},
    "custom_resolvers": {
        "stock_ml.run_stamp": run_stamp,
        "stock_ml.today": today,
        "stock_ml.now": now,
        "stock_ml.code_version": code_version,
        # Kedro allows ${oc.env:...} in credentials only; prod's mlflow.yml takes the tracking
        # server's URL from MLFLOW_TRACKING_URI (a location, not a secret) the same way.
        "oc.env": oc.env,
    },
}
