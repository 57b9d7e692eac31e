"""Airflow local settings for a stock_ml deployment: copy to ``$AIRFLOW_HOME/config/``.

Airflow imports this module in each of its processes at start-up. Importing here what every
stock_ml task imports (MLflow through kedro-mlflow's hook, Kedro, the project's settings and every
pipeline's nodes) makes the scheduler hold them, and the LocalExecutor's task processes, forked
from it, start warm: measured with bench/airflow.py --local-executor, a single-node task's
overhead falls from about 8 s (a fresh process imports for 7 s) to a few seconds. The cost: the
scheduler, dag-processor and api-server each take the imports once (a few seconds, a few hundred
MB), and a new release of the project needs a restart of the Airflow services to be seen.
"""

import kedro.framework.session  # noqa: F401
import mlflow  # noqa: F401

import stock_ml.settings  # noqa: F401  (the project's hooks, config loader and resolvers)
from stock_ml.pipeline_registry import register_pipelines

register_pipelines()  # imports every pipeline's nodes and what they import at module level
