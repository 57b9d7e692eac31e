"""A partitioned log that may be empty, and whose partitions can be updated by key.

PartitionedDataset that loads ``{}`` instead of failing: the prediction log starts empty and stays
empty while an env has no champion (inference scores nothing then). Monitoring and the API export
must still run and say so; kedro-datasets' PartitionedDataset raises "No partitions found" on an
empty folder, which would stop the daily run before its decision to retrain could be made.

With ``replace_by`` (columns), saving a partition that exists replaces only the stored rows whose
``replace_by`` values occur in the new rows and keeps the others: a run that rescored some
symbols of an as-of date (a run narrowed to a scope) leaves every other symbol's predictions of
that date in place, like PostgresTableDataset's ``replace_by`` in prod. The merged partition is
written by the partition dataset (AtomicParquetDataset: a temporary file renamed into place), so a
reader sees the old partition or the new one. Without ``replace_by`` a save overwrites partitions
whole, as PartitionedDataset does.
"""

from __future__ import annotations

import logging
from copy import deepcopy
from typing import Any

import pandas as pd
from kedro.io import DatasetError
from kedro_datasets.partitions import PartitionedDataset

logger = logging.getLogger(__name__)


class PredictionLogDataset(PartitionedDataset):
    def __init__(self, *, replace_by: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._replace_by = list(replace_by or [])

    def _describe(self) -> dict[str, Any]:
        return {**super()._describe(), "replace_by": self._replace_by}

    def load(self) -> dict[str, Any]:
        try:
            return super().load()
        except DatasetError as error:
            if "No partitions found" in str(error):
                return {}
            raise

    def save(self, data: dict[str, Any]) -> None:
        if not self._replace_by:
            super().save(data)
            return
        merged = {}
        for partition_id, rows in data.items():
            if callable(rows) and self._save_lazily:
                rows = rows()  # noqa: PLW2901
            merged[partition_id] = self._with_other_stored_rows(partition_id, rows)
        super().save(merged)

    def _partition(self, partition_id: str):
        kwargs = deepcopy(self._dataset_config)
        kwargs[self._filepath_arg] = self._join_protocol(self._partition_to_path(partition_id))
        return self._dataset_type(**kwargs)

    def _with_other_stored_rows(self, partition_id: str, rows: pd.DataFrame) -> pd.DataFrame:
        """``rows`` plus the stored rows of ``partition_id`` whose key ``rows`` does not have."""
        missing = [column for column in self._replace_by if column not in rows.columns]
        if missing:
            raise DatasetError(f"{partition_id}: rows lack the replace_by columns {missing}")
        dataset = self._partition(partition_id)
        if not dataset.exists():
            return rows
        stored = dataset.load()
        missing = [column for column in self._replace_by if column not in stored.columns]
        if missing:
            raise DatasetError(
                f"{partition_id}: the stored partition lacks the replace_by columns {missing}"
            )
        new_keys = pd.MultiIndex.from_frame(rows[self._replace_by])
        replaced = pd.MultiIndex.from_frame(stored[self._replace_by]).isin(new_keys)
        kept = stored[~replaced]
        if kept.empty:
            return rows
        logger.info(
            "%s: %d new rows replace %d stored ones; %d stored rows of other %s kept",
            partition_id,
            len(rows),
            int(replaced.sum()),
            len(kept),
            "/".join(self._replace_by),
        )
        merged = pd.concat([kept, rows], ignore_index=True)
        return merged.sort_values(self._replace_by, kind="stable").reset_index(drop=True)
