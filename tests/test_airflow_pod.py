"""stock_ml.airflow_pod: the runtime params a pod task gets in STOCK_ML_RUNTIME_PARAMS."""

from __future__ import annotations

import json

import pytest

from stock_ml.airflow_pod import VARIABLE, runtime_params


def test_runtime_params_keep_every_value_and_type() -> None:
    """What Kedro's `--params` would split or retype arrives as sent: commas, `=`, nesting."""
    sent = {
        "run_id": "manual__2021-04-01T12:00:00+00:00",
        "run_date": "2021-04-01",
        "search_profile": None,
        "airflow_audit": {
            "dag_run_conf": {"note": "a, b = c", "code": "007"},
            "task": {"retries": 0},
        },
    }
    assert runtime_params({VARIABLE: json.dumps(sent)}) == sent


def test_no_variable_means_no_runtime_params() -> None:
    assert runtime_params({}) == {}
    assert runtime_params({VARIABLE: "  "}) == {}


@pytest.mark.parametrize(
    ("raw", "complaint"),
    [
        ("run_date=2021-04-01", "STOCK_ML_RUNTIME_PARAMS is not valid JSON"),
        ('["run_date"]', "STOCK_ML_RUNTIME_PARAMS must be a JSON object, got list"),
    ],
)
def test_a_malformed_variable_is_refused_naming_it(raw: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        runtime_params({VARIABLE: raw})
