"""AtomicJSONDataset: what an API reads is the old document or the new one, never half of one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kedro.io import DataCatalog, DatasetError

from stock_ml.io import AtomicJSONDataset


def test_a_save_then_load_round_trips(tmp_path: Path) -> None:
    dataset = AtomicJSONDataset(filepath=str(tmp_path / "api" / "latest.json"))
    dataset.save({"as_of_date": "2024-03-04", "predictions": [{"symbol": "AAA"}]})
    assert dataset.load() == {"as_of_date": "2024-03-04", "predictions": [{"symbol": "AAA"}]}
    assert [p.name for p in (tmp_path / "api").iterdir()] == ["latest.json"]


def test_a_failed_save_keeps_the_published_document(tmp_path: Path) -> None:
    path = tmp_path / "latest.json"
    dataset = AtomicJSONDataset(filepath=str(path))
    dataset.save({"version": 1})
    with pytest.raises(DatasetError) as error:
        dataset.save({"version": 2, "score": object()})
    assert isinstance(error.value.__cause__, TypeError)
    assert json.loads(path.read_text()) == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["latest.json"]


def test_the_parent_leaves_a_broken_document_which_is_why_this_exists(tmp_path: Path) -> None:
    from kedro_datasets.json import JSONDataset

    path = tmp_path / "latest.json"
    plain = JSONDataset(filepath=str(path))
    plain.save({"version": 1})
    with pytest.raises(DatasetError):
        plain.save({"version": 2, "score": object()})
    with pytest.raises(json.JSONDecodeError):
        json.loads(path.read_text())


def test_partitions_and_versions_write_through_it(tmp_path: Path) -> None:
    catalog = DataCatalog.from_config(
        {
            "history": {
                "type": "partitions.PartitionedDataset",
                "path": str(tmp_path / "historical"),
                "filename_suffix": ".json",
                "dataset": {"type": "stock_ml.io.AtomicJSONDataset"},
            },
            "card": {
                "type": "stock_ml.io.AtomicJSONDataset",
                "filepath": str(tmp_path / "card.json"),
                "versioned": True,
            },
        }
    )
    catalog.save("history", {"2024-03-04": {"n": 1}, "2024-03-05": {"n": 2}})
    assert sorted(p.name for p in (tmp_path / "historical").iterdir()) == [
        "2024-03-04.json",
        "2024-03-05.json",
    ]
    assert catalog.load("history")["2024-03-05"]() == {"n": 2}
    catalog.save("card", {"v": 1})
    assert catalog.load("card") == {"v": 1}
    (version,) = (tmp_path / "card.json").iterdir()
    assert [p.name for p in version.iterdir()] == ["card.json"]
