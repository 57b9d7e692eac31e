"""Helpers for tests that run the real project: a scratch copy, and commands run inside it.

Integration tests never write into the working tree: they copy the project (code, conf, the
bundled sample) into a temporary folder and run the real CLIs there, from the same virtualenv as
pytest.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ENV_SCHEMAS = {"dev": "dev_stock_data", "test": "test_stock_data", "prod": "prod_stock_data"}

_SKIP_TOP = {".git", ".venv", "build", "airflow_dags", ".pytest_cache", ".ruff_cache", ".viz"}


def copy_project(destination: Path) -> Path:
    """Copy code, conf and the bundled sample; leave every env's outputs behind (empty roots)."""

    def ignore(folder: str, names: list[str]) -> set[str]:
        here = Path(folder)
        skipped = {n for n in names if n in {"__pycache__", ".ipynb_checkpoints"}}
        if here == REPO:
            skipped |= _SKIP_TOP & set(names)
        if here.parent == REPO / "data" and here.name in ENV_SCHEMAS.values():
            skipped |= {n for n in names if n != ".gitkeep"}
        if here == REPO / "conf" / "local":
            skipped |= {n for n in names if n != ".gitkeep"}
        return skipped

    shutil.copytree(REPO, destination, ignore=ignore)
    return destination


def command_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        KEDRO_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="1",
        COLUMNS="200",
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    env.update(extra)
    return env


def _completed(args: list[str], cwd: Path, env: dict[str, str] | None, timeout: int):
    return subprocess.run(
        args,
        cwd=cwd,
        env=env or command_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_failing(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 900
) -> str:
    """Run a command that must fail; its output (stdout and stderr) on one line."""
    result = _completed(args, cwd, env, timeout)
    assert result.returncode != 0, f"{' '.join(map(str, args))} succeeded:\n{result.stdout[-2000:]}"
    return " ".join((result.stdout + result.stderr).split())


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 900):
    """Run a command; on failure, fail the test with the command's last output lines."""
    result = _completed(args, cwd, env, timeout)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + "\n" + result.stderr).splitlines()[-60:])
        raise AssertionError(f"{' '.join(map(str, args))} exited {result.returncode}:\n{tail}")
    return result


def env_outputs(project: Path, env: str) -> list[Path]:
    """Files an env wrote under its schema root (everything but .gitkeep)."""
    root = project / "data" / ENV_SCHEMAS[env]
    return [p for p in root.rglob("*") if p.is_file() and p.name != ".gitkeep"]


def airflow_env(home: Path, dags: Path) -> dict[str, str]:
    """The environment of Airflow commands on a scratch home: SQLite metadata DB, these DAGs."""
    return command_env(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
    )


def make_dags(project: Path, dags: Path, envs: str) -> set[str]:
    """The documented `make dags`, run in a scratch copy (its conf) with this virtualenv (the
    copy has none); the DAG files it left in ``dags``."""
    run(
        [
            "make", "-C", str(project), "dags", f"ENVS={envs}", f"VENV={BIN.parent}",
            f"DAGS_DIR={dags}", f"PROJECT_PATH={project}",
        ],
        cwd=project,
    )  # fmt: skip
    return {path.name for path in dags.glob("*.py")}


def simulate_scenario(base: Path, scenario: str, timeline: str) -> Path:
    """A scratch copy in ``base`` that ran ``scenario`` with the documented command
    (``python -m stock_ml.simulation <scenario> --timeline <timeline>``); returns the copy."""
    project = copy_project(base / "project")
    command = [str(BIN / "python"), "-m", "stock_ml.simulation", scenario]
    run([*command, "--timeline", str(project / timeline)], cwd=project, timeout=1800)
    return project
