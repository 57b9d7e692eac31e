"""Read-only view of a table the pipeline itself writes, that may not exist yet.

Incremental ingest must know what is already stored (the last session per symbol) before it
fetches, and the silver merge must start from the stored table. Both read a dataset that a later
node of the same pipeline writes: reading it under its own name would be a cycle in Kedro's graph,
and on the very first run there is nothing to read. This wrapper gives the stored table a second,
read-only name and answers "nothing stored yet" with an empty table of the declared columns.
kedro-datasets has no such dataset (a missing file is always a load error).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from kedro.io import AbstractDataset, DatasetError


class StoredStateDataset(AbstractDataset[None, pd.DataFrame]):
    def __init__(
        self,
        dataset: dict[str, Any],
        empty_columns: dict[str, str],
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """
        Args:
            dataset: catalog config of the stored table (same filepath and versioning as the
                entry that writes it; ``load_args`` may narrow the columns read).
            empty_columns: column → dtype of the empty table returned when nothing is stored.
            metadata: Kedro metadata (e.g. kedro-viz layer); not used by the dataset.
        """
        self._config = dict(dataset)
        self._empty_columns = dict(empty_columns)
        self._dataset = AbstractDataset.from_config("stored_state", self._config)
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"dataset": self._config, "empty_columns": self._empty_columns}

    def _exists(self) -> bool:
        return self._dataset.exists()

    def _load(self) -> pd.DataFrame:
        if not self._dataset.exists():
            return pd.DataFrame(
                {name: pd.Series(dtype=dtype) for name, dtype in self._empty_columns.items()}
            )
        return self._dataset.load()

    def _save(self, data: None) -> None:
        raise DatasetError(
            "StoredStateDataset is a read-only view: save through the entry that owns the table"
        )
