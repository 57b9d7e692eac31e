"""A DAG whose first task fails on its first try and succeeds on its retry (scheduler test)."""

from datetime import timedelta

import pendulum
from airflow.sdk import dag, get_current_context, task


@dag(
    dag_id="stock_ml_retry_probe",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    schedule=None,
    catchup=False,
    is_paused_upon_creation=True,
    default_args={"retries": 1, "retry_delay": timedelta(seconds=3)},
)
def stock_ml_retry_probe():
    @task(task_id="flaky")
    def flaky() -> int:
        tries = get_current_context()["ti"].try_number
        print(f"flaky: try_number={tries}")
        if tries < 2:
            raise RuntimeError(f"failing on purpose on try {tries}")
        return tries

    @task(task_id="downstream")
    def downstream(tries: int) -> None:
        print(f"downstream: upstream succeeded on try {tries}")

    downstream(flaky())


stock_ml_retry_probe()
