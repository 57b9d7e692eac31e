"""Resolvers conf/ uses for run identity and code version."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

import stock_ml
from stock_ml.config_resolvers import code_version, now, run_stamp, today

REPO = Path(__file__).resolve().parents[1]


def test_run_identity_is_fixed_once_per_process():
    assert run_stamp() == run_stamp() and run_stamp().startswith("manual__")
    assert today() == today() and re.fullmatch(r"\d{4}-\d{2}-\d{2}", today())
    assert now() == now() and now().endswith("+00:00")


def test_code_version_names_the_commit_of_a_checkout():
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout: code_version falls back to the package version")
    head = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short=12", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    version = code_version()
    assert re.fullmatch(rf"{re.escape(stock_ml.__version__)}\+g{head}(\.dirty)?", version)
