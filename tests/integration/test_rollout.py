"""Staged rollout, end to end: conf/scenarios/rollout_canary.yml run with the documented command
on a scratch copy (real Kedro sessions, the test env's MLflow registry, the test env's synthetic
universe of six symbols).

A good candidate (a real retraining one session after the champion's) must advance through the
four stages (1, 2, 3, then 6 of 6 symbols) and complete; a bad one (a model fitted on flipped
labels, injected) must be rolled back at the canary stage, with the champion back on the good
one. Every symbol must have a serving prediction on every day, from its cohort's model.
"""

from __future__ import annotations

import json

import mlflow
import pandas as pd
import pytest

from tests.integration.project import simulate_scenario

pytestmark = pytest.mark.slow

SCENARIO = "conf/scenarios/rollout_canary.yml"
SYMBOLS = {"AAA", "BBB", "CCC", "DDD", "EEE", "FFF"}


@pytest.fixture(scope="module")
def rollouts(tmp_path_factory) -> dict:
    project = simulate_scenario(tmp_path_factory.mktemp("rollout"), SCENARIO, "rollouts.csv")
    timeline = project / "rollouts.csv"
    root = project / "data" / "test_stock_data"
    frame = pd.read_csv(timeline, dtype={"missing": str, "canary_symbols": str})
    return {
        "root": root,
        "timeline": frame,
        "good": frame[frame["rollout"] == "good"].reset_index(drop=True),
        "bad": frame[frame["rollout"] == "bad"].reset_index(drop=True),
        "client": mlflow.MlflowClient(f"sqlite:///{root / 'mlflow.db'}"),
    }


def _served(cell: str) -> dict[str, int]:
    return {s: int(v.removeprefix("v")) for s, v in (pair.split(":") for pair in cell.split(","))}


def test_no_symbol_is_ever_left_without_a_prediction(rollouts) -> None:
    timeline = rollouts["timeline"]
    assert timeline["missing"].isna().all()
    for row in timeline.itertuples():
        assert set(_served(row.served)) == SYMBOLS, row.day


def test_the_good_candidate_advances_through_every_stage(rollouts) -> None:
    good = rollouts["good"]
    assert set(good["candidate_version"]) == {2}
    steps = good[good["decision"] != "hold"]
    assert steps[["share", "decision"]].to_dict("records") == [
        {"share": 0.05, "decision": "advance"},
        {"share": 0.25, "decision": "advance"},
        {"share": 0.5, "decision": "advance"},
        {"share": 1.0, "decision": "complete"},
    ]
    # Each day, the stage's canary cohort is served by v2 and every other symbol by v1; each
    # stage's cohort holds the previous one's (1, 2, 3, then 6 symbols).
    cohorts = []
    for row in good.itertuples():
        canary = set(row.canary_symbols.split(","))
        served = _served(row.served)
        assert {s for s, v in served.items() if v == 2} == canary, row.day
        assert {s for s, v in served.items() if v == 1} == SYMBOLS - canary, row.day
        if not cohorts or cohorts[-1] != canary:
            cohorts.append(canary)
    assert [len(c) for c in cohorts] == [1, 2, 3, 6]
    assert cohorts[0] < cohorts[1] < cohorts[2] < cohorts[3]
    # Completed: v2 champion, v1 kept as previous for a manual rollback.
    last = good.iloc[-1]
    assert (last["champion_after"], last["previous_after"]) == (2, 1)


def test_the_bad_candidate_is_rolled_back_at_the_canary_stage(rollouts) -> None:
    bad = rollouts["bad"]
    assert set(bad["candidate_version"]) == {3}
    assert set(bad["share"]) == {0.05}, "never past the canary stage"
    assert bad["decision"].tolist()[-1] == "rollback"
    assert set(bad["decision"].iloc[:-1]) == {"hold"}
    (canary,) = set(bad["canary_symbols"])
    for row in bad.itertuples():
        served = _served(row.served)
        assert served[canary] == 3 and {v for s, v in served.items() if s != canary} == {2}
    matured = bad.dropna(subset=["canary_accuracy"])
    assert (matured["canary_accuracy"] <= matured["control_accuracy"]).all()
    assert matured["canary_accuracy"].iloc[-1] < matured["control_accuracy"].iloc[-1]
    last = bad.iloc[-1]
    assert (last["champion_after"], last["previous_after"]) == (2, 1)
    decision = json.loads((rollouts["root"] / "08_reporting" / "rollout_decision.json").read_text())
    assert decision["decision"] == "rollback"
    # the breach: a drop beyond its limit that a one-sided paired test calls significant
    breached = [r.split("_drop")[0] for r in decision["reasons"]]
    assert breached and set(breached) <= {"accuracy", "rank_ic", "sharpe"}
    assert all(decision["pvalues"][metric] < 0.05 for metric in breached)
    client = rollouts["client"]
    assert client.get_model_version("test_stock_ml_direction", "3").tags["rollout"] == "failed"
    assert client.get_model_version("test_stock_ml_direction", "2").tags["rollout"] == "complete"


def test_the_rollout_history_is_recorded_plotted_and_logged(rollouts) -> None:
    root = rollouts["root"]
    history = pd.read_parquet(root / "08_reporting" / "rollout_history.parquet")
    assert len(history) == len(rollouts["timeline"])
    assert history["decision"].tolist() == rollouts["timeline"]["decision"].tolist()
    state = pd.read_parquet(root / "06_models" / "rollouts.parquet")
    # v2's training run promoted it and started its rollout; v3's was started by hand
    assert state[["candidate_version", "baseline_version", "started_by", "status"]].to_dict(
        "records"
    ) == [
        {
            "candidate_version": 2,
            "baseline_version": 1,
            "started_by": "promotion",
            "status": "complete",
        },
        {"candidate_version": 3, "baseline_version": 2, "started_by": "manual", "status": "failed"},
    ]
    assert (root / "08_reporting" / "rollout_history.png").stat().st_size > 10_000
    # the last daily run logged the history, its plot and its decision to its MLflow run
    client = rollouts["client"]
    (experiment,) = [e for e in client.search_experiments() if e.name == "stock_ml_test"]
    last_day = rollouts["timeline"]["day"].iloc[-1]
    (latest,) = client.search_runs(
        [experiment.experiment_id], f"tags.mlflow.runName = 'simulated__{last_day}__daily'"
    )
    artifacts = {a.path for a in client.list_artifacts(latest.info.run_id)}
    assert {"rollout_history.png", "rollout_history.parquet", "rollout_decision.json"} <= artifacts
