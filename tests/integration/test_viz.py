"""`kedro viz build` (what `make viz` runs) renders every registered pipeline and layer."""

from __future__ import annotations

import json

import pytest

from tests.integration.project import BIN, copy_project, run

pytestmark = pytest.mark.slow


def test_kedro_viz_build_writes_the_graph(tmp_path) -> None:
    project = copy_project(tmp_path / "project")
    run([str(BIN / "kedro"), "viz", "build"], cwd=project)
    api = project / "build" / "api"
    graph = json.loads((api / "main").read_text())
    layers = {node.get("layer") for node in graph["nodes"]} - {None}
    assert {"raw", "bronze", "silver", "gold", "models", "model_output", "reporting"} <= layers
    names = {node["name"] for node in graph["nodes"]}
    assert {"extract_prices", "search_model", "score_latest_sessions", "drift_report"} <= names
    assert "decide_promotion" in names
    pipelines = {p.name for p in (api / "pipelines").iterdir()}
    assert {"__default__", "daily", "retraining", "ingest", "monitoring", "rollback"} <= pipelines
    rollback = json.loads((api / "pipelines" / "rollback").read_text())
    assert "rollback_champion" in {node["name"] for node in rollback["nodes"]}
