"""Shared fixtures. Integration fixtures are session-scoped: one real run serves several tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.integration.project import BIN, copy_project, run
from tests.yahoo_replay import fresh_yfinance, yahoo  # noqa: F401  (fixtures)

E2E_RUN_ID = "e2e-test-run"


@pytest.fixture(scope="session")
def test_env_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch copy of the project after a real `kedro run --env test` (all pipelines)."""
    project = copy_project(tmp_path_factory.mktemp("e2e") / "project")
    run(
        [str(BIN / "kedro"), "run", "--env", "test", "--params", f"run_id={E2E_RUN_ID}"],
        cwd=project,
    )
    return project


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    """A copy of the project's conf (conf/local empty) that a test may change."""
    conf = tmp_path / "conf"
    repo = Path(__file__).resolve().parents[1]
    shutil.copytree(repo / "conf", conf, ignore=shutil.ignore_patterns("local"))
    (conf / "local").mkdir()
    return conf
