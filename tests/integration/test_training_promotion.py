"""Training, promotion and rollback through real `kedro run`s on one MLflow registry.

One scratch project, one sequence: data → train (bootstrap champion) → retrain the same data
(identical metrics; the champion margin fails, so champion stays) → retrain with a lenient gate
set (champion moves) → rollback (champion back) → rollback with nothing left (clear error).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from tests.integration.project import BIN, copy_project, run

pytestmark = pytest.mark.slow

MODEL = "test_stock_ml_direction"


def _kedro(project: Path, *args: str) -> subprocess.CompletedProcess:
    return run([str(BIN / "kedro"), "run", "--env", "test", *args], cwd=project)


def _train(project: Path, run_id: str, extra_params: str = "") -> None:
    params = f"run_id={run_id},search_profile=quick" + (f",{extra_params}" if extra_params else "")
    _kedro(project, "--pipelines", "training", "--params", params)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    project = copy_project(tmp_path_factory.mktemp("promotion") / "project")
    _kedro(project, "--pipelines", "ingest,silver,feature_store", "--params", "run_id=data-1")
    return project


@pytest.fixture(scope="module")
def client(project: Path) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(f"sqlite:///{project / 'data/test_stock_data/mlflow.db'}")


def _run_of(client, run_name: str):
    experiment = client.get_experiment_by_name("stock_ml_test")
    (found,) = client.search_runs([experiment.experiment_id], f"attributes.run_name = '{run_name}'")
    return found


def _trial_scores(client, run) -> list[tuple[str, str, float]]:
    children = client.search_runs(
        [run.info.experiment_id],
        f"tags.mlflow.parentRunId = '{run.info.run_id}'",
        order_by=["attributes.run_name"],
    )
    return [
        (c.info.run_name, c.data.params["family"], c.data.metrics["cv_score"]) for c in children
    ]


def _aliases(client) -> dict[str, int]:
    return {k: int(v) for k, v in client.get_registered_model(MODEL).aliases.items()}


def _decision(project: Path, name: str = "promotion_decision") -> dict:
    return json.loads((project / f"data/test_stock_data/06_models/{name}.json").read_text())


def test_training_registers_promotes_rejects_and_rolls_back(project: Path, client) -> None:
    # 1. first model, no champion: the test env's bootstrap rule promotes it
    _train(project, "train-1")
    assert _aliases(client) == {"champion": 1}
    first = _decision(project)
    assert first["action"] == "bootstrap" and first["champion_after"] == 1
    run_1 = _run_of(client, "train-1")
    assert run_1.data.params["search.profile"] == "quick"
    assert len(_trial_scores(client, run_1)) == 8

    # 2. same data, seed and trial-bounded profile: identical search and metrics; the champion
    #    margin (sharpe > champion + 0.1) cannot pass against itself, so champion stays
    _train(project, "train-2")
    run_2 = _run_of(client, "train-2")
    assert _trial_scores(client, run_2) == _trial_scores(client, run_1)
    model_metrics = {
        name: value
        for name, value in run_1.data.metrics.items()
        if name.startswith(("training_metrics.model.", "training_metrics.momentum."))
    }
    assert len(model_metrics) > 20
    assert {name: run_2.data.metrics[name] for name in model_metrics} == model_metrics
    # the champion, scored on the same holdout, is the same model: the same numbers
    assert (
        run_2.data.metrics["training_metrics.champion.sharpe"]
        == (run_1.data.metrics["training_metrics.model.sharpe"])
    )
    second = _decision(project)
    assert second["action"] == "reject" and not second["promoted"]
    champion_gate = next(g for g in second["gates"] if g["gate"].startswith("sharpe_gt_champion"))
    assert not champion_gate["passed"]
    assert champion_gate["threshold"] == pytest.approx(champion_gate["value"] + 0.1)
    assert _aliases(client) == {"champion": 1, "challenger": 2}, "a failing gate moved nothing"
    assert client.get_model_version(MODEL, "2").tags["promotion_action"] == "reject"
    assert run_2.data.metrics["promotion_metrics.promoted"] == 0.0

    # 3. a gate set every model passes and a negative champion margin: champion moves
    (project / "conf/test/parameters_promotion.yml").write_text(
        "promotion:\n"
        "  when_no_champion: bootstrap\n"
        "  champion_gate: {metric: sharpe, op: '>', margin: -100}\n"
        "  gate_sets:\n"
        "    lenient:\n"
        "      - {metric: roc_auc, op: '>', value: 0.0}\n"
    )
    _train(project, "train-3", "gate_set=lenient")
    third = _decision(project)
    assert third["action"] == "promote" and third["gate_set"] == "lenient"
    assert _aliases(client) == {"champion": 3, "previous": 1}

    # 4. rollback: champion back to previous, recorded with its reason
    _kedro(project, "--pipelines", "rollback", "--params", "rollback_reason=canary breach")
    assert _aliases(client) == {"champion": 1}, "v1 had no predecessor: previous is gone"
    rollback = _decision(project, "rollback_decision")
    assert (rollback["champion_before"], rollback["champion_after"]) == (3, 1)
    assert rollback["reason"] == "canary breach"
    assert "rolled_back_at" in client.get_model_version(MODEL, "3").tags
    history = pd.read_parquet(project / "data/test_stock_data/06_models/promotion_history.parquet")
    assert history["action"].tolist() == ["bootstrap", "reject", "promote", "rollback"]
    assert history["champion_after"].tolist() == [1, 1, 3, 1]

    # 5. nothing left to roll back to: a clear error, and the registry is untouched
    with pytest.raises(AssertionError, match="no 'previous' alias"):
        _kedro(project, "--pipelines", "rollback")
    assert _aliases(client) == {"champion": 1}


def test_inference_serves_the_champion_after_rollback(project: Path, client) -> None:
    """Runs after the sequence above: the daily scoring reads @champion, now v1 again."""
    _kedro(project, "--pipelines", "inference", "--params", "run_id=score-1")
    root = project / "data/test_stock_data/07_predictions/predictions"
    predictions = pd.concat(pd.read_parquet(p) for p in root.glob("as_of_date=*/*.parquet"))
    assert set(predictions["model_version"]) == {_aliases(client)["champion"]} == {1}


def test_a_challenger_in_shadow_is_decided_by_the_daily_run(project: Path, client) -> None:
    """Runs last: gates pass but prod-style shadow days are required; the daily run decides."""
    (project / "conf/test/parameters_promotion.yml").write_text(
        "promotion:\n"
        "  when_no_champion: bootstrap\n"
        "  champion_gate: {metric: sharpe, op: '>', margin: -100}\n"
        "  shadow: {min_matured_days: 3, metric: accuracy, min_win_share: 0.5}\n"
        "  gate_sets:\n"
        "    lenient:\n"
        "      - {metric: roc_auc, op: '>', value: 0.0}\n"
    )
    _train(project, "train-4", "gate_set=lenient")
    assert _decision(project)["action"] == "shadow"
    assert _aliases(client) == {"champion": 1, "challenger": 4}, "gates passed, nothing moved yet"

    # one daily run replays the last score_sessions sessions: many matured days for both models
    _kedro(project, "--pipelines", "inference,monitoring", "--params", "run_id=daily-1")
    root = project / "data/test_stock_data"
    latest_day = sorted((root / "07_predictions/predictions").glob("as_of_date=*"))[-1]
    scored = pd.concat(pd.read_parquet(p) for p in latest_day.glob("*.parquet"))
    assert sorted(set(zip(scored["model_version"], scored["role"], strict=True))) == [
        (1, "serving"),
        (4, "shadow"),
    ]
    latest = json.loads((root / "07_predictions/api/latest.json").read_text())
    assert latest["model_version"] == 1, "the API never publishes the shadow"
    decision = _decision(project, "shadow_promotion_decision")
    assert decision["shadow_days"] >= 3
    performance = pd.read_csv(root / "08_reporting/monitoring_performance.csv")
    pivot = performance.pivot_table(index="as_of_date", columns="role", values="accuracy").dropna()
    assert decision["shadow_wins"] == int((pivot["shadow"] > pivot["serving"]).sum())
    promoted = decision["shadow_wins"] / decision["shadow_days"] >= 0.5
    assert decision["action"] == ("promote_after_shadow" if promoted else "shadow_rejected")
    assert _aliases(client) == ({"champion": 4, "previous": 1} if promoted else {"champion": 1})
    history = pd.read_parquet(root / "06_models/promotion_history.parquet")
    assert history["action"].tolist()[-2:] == ["shadow", decision["action"]]
