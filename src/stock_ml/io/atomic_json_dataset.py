"""json.JSONDataset whose local writes are all-or-nothing, like AtomicParquetDataset.

The API export (``latest.json``, ``historical/<date>.json``) is read by a service while the daily
run writes it: kedro-datasets' JSONDataset streams into the target, so a reader (or a crash) could
meet half a document. Locally this writes a hidden temporary file and renames it into place.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kedro.io.core import get_filepath_str
from kedro_datasets.json import JSONDataset

from stock_ml.io.atomic_parquet_dataset import atomic_write


class AtomicJSONDataset(JSONDataset):
    def save(self, data: Any) -> None:
        if self._protocol != "file":
            super().save(data)
            return
        target = Path(get_filepath_str(self._get_save_path(), self._protocol))
        # Serialise first: data json cannot encode fails before any file is touched.
        text = json.dumps(data, **self._save_args)
        atomic_write(target, lambda path: path.write_text(text, encoding="utf-8"))
        self._invalidate_cache()
