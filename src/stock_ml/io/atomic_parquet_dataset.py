"""pandas.ParquetDataset whose local writes are all-or-nothing.

kedro-datasets' ParquetDataset streams into the target file: a failure half-way (a value pyarrow
cannot write, a full disk, a killed worker) leaves a truncated file where the good one stood —
for a rerun's bronze partition, or a table without versions. On the local filesystem this subclass
writes a hidden temporary file beside the target and renames it into place (``os.replace`` is
atomic within a filesystem), so readers see the old file or the new one, never a part of one.
Other protocols (object stores, whose uploads are already all-or-nothing) keep the parent's save.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from kedro.io.core import get_filepath_str
from kedro_datasets.pandas import ParquetDataset


def atomic_write(target: Path, write: Callable[[Path], object]) -> None:
    """Call ``write`` on a hidden temporary file beside ``target``, then rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        write(temporary)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


class AtomicParquetDataset(ParquetDataset):
    def save(self, data: pd.DataFrame) -> None:
        if self._protocol != "file" or "partition_cols" in self._save_args:
            super().save(data)
            return
        target = Path(get_filepath_str(self._get_save_path(), self._protocol))
        if target.is_dir():
            super().save(data)  # the parent's error for a directory target
            return
        atomic_write(target, lambda path: data.to_parquet(path, **self._save_args))
        self._invalidate_cache()
