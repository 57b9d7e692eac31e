"""AtomicParquetDataset: a failed write leaves the previous file as it was, and no debris."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from kedro.io import DataCatalog, DatasetError

from stock_ml.io import AtomicParquetDataset


class Unwritable:
    """A value pyarrow cannot convert: the write fails after the file was opened."""


def test_a_save_then_load_round_trips(tmp_path: Path) -> None:
    frame = pd.DataFrame({"symbol": ["AAA", "BBB"], "close": [1.5, 2.5]})
    dataset = AtomicParquetDataset(filepath=str(tmp_path / "t.parquet"))
    dataset.save(frame)
    pd.testing.assert_frame_equal(dataset.load(), frame)
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]


def test_a_failed_save_keeps_the_good_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    good = pd.DataFrame({"close": [1.0, 2.0, 3.0]})
    dataset = AtomicParquetDataset(filepath=str(tmp_path / "t.parquet"))
    dataset.save(good)
    bad = pd.DataFrame({"close": [Unwritable()] * 3})
    with pytest.raises(DatasetError) as error:
        dataset.save(bad)
    assert isinstance(error.value.__cause__, pa.ArrowException | TypeError | ValueError)
    pd.testing.assert_frame_equal(dataset.load(), good)
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]


def test_the_parent_writes_in_place_which_is_why_this_exists(tmp_path: Path) -> None:
    """kedro-datasets' own ParquetDataset, same failure: the good file is gone or truncated."""
    from kedro_datasets.pandas import ParquetDataset

    path = tmp_path / "t.parquet"
    plain = ParquetDataset(filepath=str(path))
    plain.save(pd.DataFrame({"close": [1.0, 2.0, 3.0]}))
    with pytest.raises(DatasetError):
        plain.save(pd.DataFrame({"close": [Unwritable()] * 3}))
    with pytest.raises(Exception):  # noqa: B017  (whatever pyarrow says of a truncated file)
        pd.read_parquet(path)


def test_versioned_saves_write_one_new_version_each(tmp_path: Path) -> None:
    catalog = DataCatalog.from_config(
        {
            "table": {
                "type": "stock_ml.io.AtomicParquetDataset",
                "filepath": str(tmp_path / "t.parquet"),
                "versioned": True,
                "save_args": {"compression": "zstd"},
            }
        }
    )
    catalog.save("table", pd.DataFrame({"close": [1.0]}))
    versions = list((tmp_path / "t.parquet").iterdir())
    assert len(versions) == 1
    assert [p.name for p in versions[0].iterdir()] == ["t.parquet"]
    assert catalog.load("table")["close"].tolist() == [1.0]
