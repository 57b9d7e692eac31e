"""PredictionLogDataset: an empty log loads as {}; with replace_by, saving a partition replaces the
stored rows of the new rows' keys and keeps the others, written atomically."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from kedro.io import DataCatalog, DatasetError

from stock_ml.io import PredictionLogDataset

KEY = "as_of_date=2024-03-20/model_version=7"


def _log(path: Path, replace_by: list[str] | None = None) -> PredictionLogDataset:
    return PredictionLogDataset(
        path=str(path),
        dataset="stock_ml.io.AtomicParquetDataset",
        filename_suffix=".parquet",
        replace_by=replace_by,
    )


def _rows(scores: dict[str, float], run: str) -> pd.DataFrame:
    return pd.DataFrame(
        {"symbol": list(scores), "score": list(scores.values()), "scored_by_run": run}
    )


def _stored(log: PredictionLogDataset, key: str = KEY) -> list[tuple]:
    return [tuple(row) for row in log.load()[key]().itertuples(index=False)]


def test_an_empty_log_loads_as_no_partitions(tmp_path: Path) -> None:
    assert _log(tmp_path / "predictions", ["symbol"]).load() == {}


def test_a_partition_rescored_for_some_symbols_keeps_the_others(tmp_path: Path) -> None:
    log = _log(tmp_path / "predictions", ["symbol"])
    other = "as_of_date=2024-03-19/model_version=7"
    log.save(
        {
            KEY: _rows({"AAA": 0.1, "BBB": 0.2, "CCC": 0.3}, "full"),
            other: _rows({"AAA": 0.9}, "full"),
        }
    )
    log.save({KEY: _rows({"CCC": 0.35, "AAA": 0.15}, "narrowed")})
    assert _stored(log) == [
        ("AAA", 0.15, "narrowed"),
        ("BBB", 0.2, "full"),
        ("CCC", 0.35, "narrowed"),
    ]
    assert _stored(log, other) == [("AAA", 0.9, "full")], "a partition not saved is untouched"
    # a new partition is written as given; a full rescore replaces every row
    log.save({KEY: _rows({"AAA": 0.5, "BBB": 0.6, "CCC": 0.7}, "rerun")})
    assert _stored(log) == [("AAA", 0.5, "rerun"), ("BBB", 0.6, "rerun"), ("CCC", 0.7, "rerun")]
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert files == [f"predictions/{other}.parquet", f"predictions/{KEY}.parquet"], "no debris"


def test_without_replace_by_a_save_overwrites_the_partition_whole(tmp_path: Path) -> None:
    log = _log(tmp_path / "predictions")
    log.save({KEY: _rows({"AAA": 0.1, "BBB": 0.2}, "full")})
    log.save({KEY: _rows({"AAA": 0.15}, "narrowed")})
    assert _stored(log) == [("AAA", 0.15, "narrowed")]


def test_a_failed_merge_keeps_the_stored_partition(tmp_path: Path) -> None:
    log = _log(tmp_path / "predictions", ["symbol"])
    log.save({KEY: _rows({"AAA": 0.1, "BBB": 0.2}, "full")})
    with pytest.raises(
        DatasetError, match=rf"{KEY}: rows lack the replace_by columns \['symbol'\]"
    ):
        log.save({KEY: pd.DataFrame({"score": [0.5]})})
    bad = _rows({"AAA": 0.3}, "narrowed").assign(score=[object()])  # pyarrow cannot write it
    with pytest.raises(DatasetError):
        log.save({KEY: bad})
    assert _stored(log) == [("AAA", 0.1, "full"), ("BBB", 0.2, "full")]
    assert [p.name for p in (tmp_path / "predictions" / "as_of_date=2024-03-20").iterdir()] == [
        "model_version=7.parquet"
    ]


def test_the_catalog_entry_replaces_by_symbol(tmp_path: Path) -> None:
    """conf/base/catalog.yml's `predictions` entry, as the config loader reads it."""
    import yaml

    catalog_yml = Path(__file__).parents[2] / "conf" / "base" / "catalog.yml"
    entry = yaml.safe_load(catalog_yml.read_text())["predictions"]
    assert entry["replace_by"] == ["symbol"]
    entry["path"] = str(tmp_path / "predictions")
    catalog = DataCatalog.from_config({"predictions": entry})
    catalog.save("predictions", {KEY: _rows({"AAA": 0.1, "BBB": 0.2}, "full")})
    catalog.save("predictions", {KEY: _rows({"BBB": 0.25}, "narrowed")})
    assert _stored(catalog.get("predictions")) == [("AAA", 0.1, "full"), ("BBB", 0.25, "narrowed")]
