"""Every notebook in notebooks/ runs top to bottom against a real env's catalog."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.integration.project import command_env

pytestmark = pytest.mark.slow


def test_explore_gold_features_notebook(test_env_project: Path, monkeypatch) -> None:
    for key, value in command_env(
        STOCK_ML_ENV="test", STOCK_ML_PROJECT_PATH=str(test_env_project)
    ).items():
        monkeypatch.setenv(key, value)
    path = test_env_project / "notebooks" / "explore_gold_features.ipynb"
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()  # raises CellExecutionError on any failing cell
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert len(images) == 2, "the feature plot and the IC plot"
    assert "env=test" in text
    assert "symbols: 6" in text, "loaded the test env's synthetic universe through the catalog"
