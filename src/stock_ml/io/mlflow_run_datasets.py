"""Write into the MLflow run that kedro-mlflow opened: params computed by a node, nested runs.

kedro-mlflow logs a node's ``params:`` inputs, metrics and artifacts, but has no dataset for
params a node *computes* (the gold build a model learnt from, its data window) and none that logs
a table as nested child runs (one per search trial). Both are small, so they live here.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
from kedro.io import AbstractDataset, DatasetError

from stock_ml.io.atomic_parquet_dataset import atomic_write

MAX_PARAM_LENGTH = 6000  # MLflow 3's limit on a param value


def _active_run():
    import mlflow

    run = mlflow.active_run()
    if run is None:
        raise DatasetError(
            "No active MLflow run: run this pipeline through `kedro run` with kedro-mlflow "
            "(conf/<env>/mlflow.yml), which opens one"
        )
    return run


def flatten(params: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested dict → ``a.b.c`` keys with string values, truncated to MLflow's limit."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            flat[name] = text[:MAX_PARAM_LENGTH]
    return flat


class MlflowParamsDataset(AbstractDataset[dict, None]):
    """Log a node's dict as params of the active run, keys prefixed by ``prefix``."""

    def __init__(self, prefix: str = "", metadata: dict[str, Any] | None = None) -> None:
        self._prefix = prefix
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"prefix": self._prefix}

    def _save(self, params: dict) -> None:
        import mlflow

        _active_run()
        mlflow.log_params(flatten(params, f"{self._prefix}." if self._prefix else ""))

    def _load(self) -> None:
        raise DatasetError("MlflowParamsDataset is write-only: read the params from MLflow")


class MlflowNestedRunsDataset(AbstractDataset[pd.DataFrame, pd.DataFrame]):
    """A table whose rows become child runs of the active run, kept as a CSV too.

    Each row is one child run named ``<run_name_prefix><row[name_column]>``: ``param_columns``
    (dict-valued columns are flattened) become params, numeric ``metric_columns`` metrics (a
    list-valued one becomes ``<name>_0``, ``<name>_1`` …), the rest tags. The whole table is
    written to ``filepath`` (atomically) and logged as an artifact of the parent run.
    """

    def __init__(
        self,
        filepath: str,
        name_column: str,
        param_columns: list[str],
        metric_columns: list[str],
        run_name_prefix: str = "",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._filepath = Path(filepath)
        self._name_column = name_column
        self._param_columns = list(param_columns)
        self._metric_columns = list(metric_columns)
        self._prefix = run_name_prefix
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "name_column": self._name_column}

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _load(self) -> pd.DataFrame:
        return pd.read_csv(self._filepath)

    def _save(self, table: pd.DataFrame) -> None:
        import mlflow
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

        parent = _active_run()
        missing = {self._name_column, *self._param_columns, *self._metric_columns} - set(table)
        if missing:
            raise DatasetError(f"{self._filepath.name}: table lacks columns {sorted(missing)}")
        atomic_write(self._filepath, lambda path: table.to_csv(path, index=False))
        mlflow.log_artifact(str(self._filepath))
        client = mlflow.MlflowClient()
        tag_columns = [
            c
            for c in table.columns
            if c not in {self._name_column, *self._param_columns, *self._metric_columns}
        ]
        for row in table.to_dict(orient="records"):
            name = f"{self._prefix}{row[self._name_column]}"
            child = client.create_run(
                parent.info.experiment_id,
                run_name=name,
                tags={MLFLOW_PARENT_RUN_ID: parent.info.run_id, MLFLOW_RUN_NAME: name},
            )
            params = flatten({c: row[c] for c in self._param_columns})
            metrics = _metrics({c: row[c] for c in self._metric_columns})
            tags = {c: str(row[c]) for c in tag_columns}
            client.log_batch(
                child.info.run_id,
                metrics=[Metric(k, v, 0, 0) for k, v in metrics.items()],
                params=[Param(k, v) for k, v in params.items()],
                tags=[RunTag(k, v[:MAX_PARAM_LENGTH]) for k, v in tags.items()],
            )
            client.set_terminated(child.info.run_id)


def _metrics(values: dict[str, Any]) -> dict[str, float]:
    """Finite numbers only (MLflow refuses NaN in some stores); lists spread over suffixes."""
    metrics = {}
    for name, value in values.items():
        items = value if isinstance(value, list | tuple) else [value]
        suffixes = [f"_{i}" for i in range(len(items))] if isinstance(value, list | tuple) else [""]
        for suffix, item in zip(suffixes, items, strict=True):
            if isinstance(item, int | float) and math.isfinite(item):
                metrics[f"{name}{suffix}"] = float(item)
    return metrics
