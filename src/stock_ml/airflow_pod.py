"""``kedro run`` for a KubernetesPodOperator task, its runtime params read from the environment.

A DAG task with ``operator: kubernetes_pod`` (airflow.yml task settings) runs in a pod of the
project image::

    python -m stock_ml.airflow_pod --env prod --pipelines daily --nodes plan_ingest,extract_prices

with ``STOCK_ML_RUNTIME_PARAMS`` set to a JSON object, which Airflow renders for each try from
the task's template context (macro ``stock_ml_runtime_params`` of airflow/dag_template.j2): the
same runtime params a python task passes to its KedroSession (``run_id``, ``run_date``, the DAG's
Params and fixed runtime params, ``airflow_dag_id``, ``airflow_task_id``, ``airflow_audit``).
Every other option is ``kedro run``'s own: this is the project's run command (what ``python -m
stock_ml`` runs) with that object as the default of ``--params``, so Kedro receives it as is, the
way ``kedro run --config`` hands it a mapping. An explicit ``--params`` replaces it.

Why not ``kedro run --params run_id=...,run_date=...`` with templated values: Kedro splits
``--params`` on commas and at the first ``=``, and reads each value as an OmegaConf dot-list
entry. A DAG run's conf is any JSON its trigger sent (commas, spaces, quotes, nesting), a string
``"1"`` or ``"null"`` would arrive as another type, and nested params (``airflow_audit``) would
need one dotted key per leaf. JSON in one variable carries every value with its type, and the
pod's argv stays short and readable. (Kedro's config loader still resolves ``${...}`` in runtime
params, however they arrive: a python task refuses such a conf value the same way.)
"""

from __future__ import annotations

import json
import os
from typing import Any

from stock_ml.__main__ import main as run_main

VARIABLE = "STOCK_ML_RUNTIME_PARAMS"


def runtime_params(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The runtime params in ``STOCK_ML_RUNTIME_PARAMS`` (none when it is unset or empty)."""
    raw = (os.environ if environ is None else environ).get(VARIABLE, "").strip()
    if not raw:
        return {}
    try:
        params = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(f"{VARIABLE} is not valid JSON ({error}): {raw[:200]!r}") from error
    if not isinstance(params, dict):
        raise ValueError(f"{VARIABLE} must be a JSON object, got {type(params).__name__}")
    return params


def main(args: list[str] | None = None) -> Any:
    params = runtime_params()
    # The task log shows what this pod ran with (a python task prints the same line).
    print("stock_ml audit: " + json.dumps(params, sort_keys=True, default=str), flush=True)
    return run_main(args=args, default_map={"params": params})


if __name__ == "__main__":
    main()
