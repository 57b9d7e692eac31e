"""Project hooks."""

from __future__ import annotations

import logging
from pathlib import Path

from kedro.framework.hooks import hook_impl
from kedro.io import MemoryDataset

logger = logging.getLogger(__name__)


def _relative(where: str) -> str:
    """A path relative to the working directory (the project root) when it lies below it."""
    path = Path(where)
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else where


class RunSummaryHook:
    """After a run, log where every persisted output and the MLflow store are.

    A person who just ran ``make run`` wants to know where to look; the catalog already knows.
    """

    @hook_impl
    def after_pipeline_run(self, run_params, pipeline, catalog) -> None:
        lines = []
        for name in sorted(pipeline.all_outputs()):
            dataset = catalog.get(name)
            if dataset is None or isinstance(dataset, MemoryDataset):
                continue
            described = dataset._describe()  # noqa: SLF001 - the public repr truncates paths
            where = (
                described.get("filepath") or described.get("path") or described.get("model_name")
            )
            if where:
                lines.append(f"{name}: {_relative(where)}")
        import mlflow  # imported here: only runs that finish need it

        lines.append(f"mlflow tracking store: {mlflow.get_tracking_uri()}")
        for line in ["Outputs of this run:", *lines]:
            logger.info(line)


class AirflowParentRunHook:
    """All tasks of one Airflow DAG run log under one MLflow parent run.

    Each task runs its own KedroSession, so kedro-mlflow starts one MLflow run per task. Given the
    runtime params ``airflow_dag_id`` and ``run_id`` (the DAG template passes both), this hook
    finds the DAG run's parent run by tag in the env's experiment, creates it if this is the
    first task, and marks the task's run as its child with MLflow's own nesting tag
    (``mlflow.parentRunId``), which the MLflow UI draws as a tree. Runs without them
    (``kedro run``, notebooks, the simulation) and runs an orchestrator started itself are left
    alone.

    The child is tagged after kedro-mlflow started it (``trylast``) rather than by making the
    parent the active run first: kedro-mlflow's end of run pops MLflow's active-run stack in
    ways that would leave the parent or the child open in a long-lived process (``airflow dags
    test`` runs every task in one). Two first tasks starting at once may both create a parent;
    both then keep the oldest and the other is deleted, so a DAG run ends with one. The parent's
    status follows its tasks: running while one runs, then finished or failed as the last one
    ended.
    """

    TAG = "airflow.dag_run"

    def __init__(self) -> None:
        self._pending: tuple[str, str] | None = None
        self._audit: dict = {}
        self._parent_run_id: str | None = None

    @hook_impl
    def after_context_created(self, context) -> None:
        import mlflow

        self._pending = self._parent_run_id = None
        params = context.params
        dag_id, run_id = params.get("airflow_dag_id"), params.get("run_id")
        if dag_id and run_id and not mlflow.active_run():
            self._pending = (str(dag_id), str(run_id))
            self._audit = {
                "run_id": run_id,
                "run_date": params.get("run_date"),
                **(params.get("airflow_audit") or {}),
            }

    @hook_impl(trylast=True)
    def before_pipeline_run(self, run_params, pipeline, catalog) -> None:
        """After kedro-mlflow started the task's run: tag it as the parent run's child, and log
        the task's effective Airflow settings and its DAG run's conf as its params (audit)."""
        import mlflow

        from stock_ml.io.mlflow_run_datasets import flatten

        task_run = mlflow.active_run()
        if self._pending is None or task_run is None:
            return
        dag_id, run_id = self._pending
        self._pending = None
        mlflow.log_params(flatten(self._audit, "airflow."))
        client = mlflow.MlflowClient()
        experiment_id = task_run.info.experiment_id
        key = f"{dag_id}/{run_id}"
        parent = self._find(client, experiment_id, key)
        if parent is None:
            created = client.create_run(
                experiment_id,
                run_name=key,
                tags={self.TAG: key, "airflow.dag_id": dag_id, "airflow.run_id": run_id},
            ).info.run_id
            parent = self._find(client, experiment_id, key)
            if parent != created:
                client.delete_run(created)
        else:
            client.update_run(parent, status="RUNNING")
        client.set_tag(task_run.info.run_id, "mlflow.parentRunId", parent)
        self._parent_run_id = parent
        logger.info("MLflow run of this task is a child of DAG run %s's run %s", key, parent)

    def _find(self, client, experiment_id: str, key: str) -> str | None:
        quoted = key.replace("'", "\\'")
        runs = client.search_runs([experiment_id], filter_string=f"tags.`{self.TAG}` = '{quoted}'")
        runs = sorted(runs, key=lambda run: (run.info.start_time, run.info.run_id))
        return runs[0].info.run_id if runs else None

    def _end(self, status: str) -> None:
        if self._parent_run_id is not None:
            import mlflow

            mlflow.MlflowClient().set_terminated(self._parent_run_id, status)
            self._parent_run_id = None

    @hook_impl
    def after_pipeline_run(self, run_params, pipeline, catalog) -> None:
        self._end("FINISHED")

    @hook_impl
    def on_pipeline_error(self, error, run_params, pipeline, catalog) -> None:
        self._end("FAILED")
