"""Staged rollout nodes on hand-made predictions and labels: cohorts, start, judge, advance,
complete, roll back (the end-to-end timelines: tests/integration/test_rollout.py)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from stock_ml.models import AliasUpdate, RegistryState
from stock_ml.pipelines.promotion.nodes import HISTORY_COLUMNS
from stock_ml.pipelines.rollout.nodes import (
    ROLLOUT_HISTORY_COLUMNS,
    advance_rollout,
    cohort_metrics,
    plan_manual_rollout,
    plot_rollout_history,
    start_rollout,
)
from stock_ml.rollout import ROLLOUT_COLUMNS, canary_size, canary_symbols, cohort_order

SYMBOLS = ["AAA", "BBB", "CCC", "DDD", "EEE", "FFF"]
UNIVERSE = {"groups": {"warsaw": {"calendar": "XWAR", "symbols": SYMBOLS}}}
ROLLOUT = {
    "enabled": True,
    "stages": [0.05, 0.5, 1.0],
    "min_matured_sessions": 3,
    "previous_retention_days": 1,
    "health": {
        "max_missing_predictions": 0,
        "max_scoring_errors": 0,
        "max_accuracy_drop": 0.1,
        "max_rank_ic_drop": 0.5,
        "max_sharpe_drop": 5.0,
        "significance": 0.05,
        "max_stage_sessions": 8,
    },
}
NAME = "test_stock_ml_direction"
DAYS = pd.bdate_range("2024-03-01", periods=30)


def _empty(columns: dict) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns.items()})


def _run(day: int) -> dict:
    date = DAYS[day]
    return {"id": f"daily-{date:%Y-%m-%d}", "date": f"{date:%Y-%m-%d}", "time": f"{date}Z"}


def _promotion(before=1, after=2, action="promote") -> dict:
    return {
        "model_name": NAME,
        "action": action,
        "champion_before": before,
        "champion_after": after,
    }


def _registry(champion=2, previous=1) -> RegistryState:
    aliases = {k: v for k, v in {"champion": champion, "previous": previous}.items() if v}
    return RegistryState(NAME, aliases, {1: {}, 2: {}, 3: {}})


def _labels() -> pd.DataFrame:
    """Every symbol goes up on even days and down on odd days (forward return ±1 %)."""
    rows = [
        {
            "symbol": s,
            "date": d,
            "label_up": float(i % 2 == 0),
            "forward_return": 0.01 * (1 - 2 * (i % 2)),
        }
        for i, d in enumerate(DAYS)
        for s in SYMBOLS
    ]
    return pd.DataFrame(rows)


def _model_input(until: int) -> pd.DataFrame:
    rows = [
        {"symbol": s, "date": d, "has_features": True} for d in DAYS[: until + 1] for s in SYMBOLS
    ]
    return pd.DataFrame(rows)


def _log(rollout: dict, through: int, run: dict, good: bool = True, skip=()) -> dict:
    """The prediction log as inference writes it during the rollout: the canary cohort served by
    v2 (right on every day if ``good``, wrong on every day if not) and scored in shadow by v1,
    the rest served by v1 (always right), as-of dates up to ``through``; ``skip``: symbols left
    unscored on the last date."""
    canary = canary_symbols(SYMBOLS, rollout["rollout_id"], float(rollout["share"]))
    partitions: dict[str, list[dict]] = {}

    def log(day, symbol, version, role, up):
        key = f"as_of_date={day:%Y-%m-%d}/model_version={version}"
        partitions.setdefault(key, []).append(
            {
                "symbol": symbol,
                "as_of_date": day,
                "model_version": version,
                "role": role,
                "score": 0.8 if up else 0.2,
                "predicted_up": int(up),
                "scored_by_run": run["id"],
            }
        )

    for i, day in enumerate(DAYS[: through + 1]):
        right = i % 2 == 0
        for symbol in SYMBOLS:
            if i == through and symbol in skip:
                continue
            if symbol in canary:
                log(day, symbol, 2, "serving", right if good else not right)
                log(day, symbol, 1, "shadow", right)
            else:
                log(day, symbol, 1, "serving", right)
    return {key: (lambda rows=rows: pd.DataFrame(rows)) for key, rows in partitions.items()}


def _advance(rollouts, day, good=True, registry=None, skip=(), history=None, shadow=None):
    """One daily step on day ``day``: labels matured up to ``day - 1`` (horizon 1)."""
    run = _run(day)
    state = rollouts[rollouts["status"] == "active"]
    rollout = state.iloc[0].to_dict() if len(state) else None
    predictions = _log(rollout, day, run, good, skip) if rollout else {}
    labels = _labels()
    labels.loc[labels["date"] >= DAYS[day], ["label_up", "forward_return"]] = np.nan
    return advance_rollout(
        rollouts,
        shadow or {"action": "none"},
        predictions,
        labels,
        _model_input(day),
        registry or _registry(),
        _empty(HISTORY_COLUMNS) if history is None else history,
        _empty(ROLLOUT_HISTORY_COLUMNS),
        UNIVERSE,
        ROLLOUT,
        1,
        252,
        run,
    )


def _started(day: int = 0) -> pd.DataFrame:
    return start_rollout(_promotion(), _empty(ROLLOUT_COLUMNS), ROLLOUT, _run(day))


# --- cohorts ------------------------------------------------------------------------------------


def test_cohorts_are_seeded_stable_and_nested():
    order = cohort_order(SYMBOLS, "r1")
    assert order == cohort_order(list(reversed(SYMBOLS)), "r1"), "input order does not matter"
    assert sorted(order) == SYMBOLS and order != cohort_order(SYMBOLS, "r2")
    cohorts = [canary_symbols(SYMBOLS, "r1", share) for share in (0.05, 0.25, 0.5, 1.0)]
    assert [len(c) for c in cohorts] == [1, 2, 3, 6]
    assert cohorts[0] <= cohorts[1] <= cohorts[2] <= cohorts[3] == set(SYMBOLS)
    # 18 symbols, seed 002's stages: 1, 5, 9, 18; below 100 % one symbol is always control.
    assert [canary_size(18, s) for s in (0.05, 0.25, 0.5, 1.0)] == [1, 5, 9, 18]
    assert canary_size(2, 0.99) == 1 and canary_size(1, 0.05) == 1
    with pytest.raises(ValueError, match=r"in \(0, 1\]"):
        canary_size(6, 0)


# --- start --------------------------------------------------------------------------------------


def test_a_promotion_starts_a_rollout_a_bootstrap_or_a_rejection_does_not():
    rollouts = _started()
    (row,) = rollouts.to_dict("records")
    assert row["rollout_id"] == f"{NAME}-v2-2024-03-01"
    assert (row["candidate_version"], row["baseline_version"]) == (2, 1)
    assert (row["status"], row["stage"], row["share"], row["stage_started"]) == (
        "active",
        0,
        0.05,
        "2024-03-01",
    )
    empty = _empty(ROLLOUT_COLUMNS)
    for decision in [_promotion(before=None, action="bootstrap"), _promotion(action="reject")]:
        assert start_rollout(decision, empty, ROLLOUT, _run(0)).empty
    assert start_rollout(_promotion(), empty, {**ROLLOUT, "enabled": False}, _run(0)).empty
    # A new promotion during a rollout supersedes it; the new baseline is its candidate.
    again = start_rollout(_promotion(before=2, after=3), rollouts, ROLLOUT, _run(4))
    assert again.set_index("candidate_version")["status"].to_dict() == {
        2: "superseded",
        3: "active",
    }


def test_a_manual_rollout_moves_the_aliases_and_is_recorded():
    registry = RegistryState(NAME, {"champion": 1}, {1: {}, 2: {}})
    rollout = {**ROLLOUT, "candidate_version": 2}
    decision, update, history = plan_manual_rollout(
        registry, _empty(HISTORY_COLUMNS), rollout, _run(0)
    )
    assert update == AliasUpdate(set_aliases={"champion": 2, "previous": 1})
    assert (decision["action"], decision["champion_before"], decision["champion_after"]) == (
        "rollout_start",
        1,
        2,
    )
    assert history["action"].tolist() == ["rollout_start"]
    for bad, message in [(None, "Name the version"), (7, "no version 7"), (1, "other than v1")]:
        with pytest.raises(ValueError, match=message):
            plan_manual_rollout(
                registry, _empty(HISTORY_COLUMNS), {**ROLLOUT, "candidate_version": bad}, _run(0)
            )


# --- the daily step -----------------------------------------------------------------------------


def test_a_good_candidate_advances_through_every_stage_and_completes():
    rollouts, decisions, day = _started(), [], 1
    while (rollouts["status"] == "active").any():
        rollouts, steps, update, history, decision = _advance(rollouts, day)
        decisions.append((day, decision["decision"], decision.get("share")))
        assert update.set_aliases == {} and history.empty
        day += 1
        assert day < 20, decisions
    # Stage 0 begins on day 0: as-of dates 1..3 mature by day 4 (horizon 1) → advance on day 4.
    assert decisions == [
        (1, "hold", 0.05),
        (2, "hold", 0.05),
        (3, "hold", 0.05),
        (4, "advance", 0.05),
        (5, "hold", 0.5),
        (6, "hold", 0.5),
        (7, "hold", 0.5),
        (8, "advance", 0.5),
        (9, "hold", 1.0),
        (10, "hold", 1.0),
        (11, "hold", 1.0),
        (12, "complete", 1.0),
    ]
    assert update == AliasUpdate(version_tags={2: {"rollout": "complete"}})
    (row,) = rollouts.to_dict("records")
    assert (row["status"], row["ended"]) == ("complete", "2024-03-19")
    assert list(steps.columns) == list(ROLLOUT_HISTORY_COLUMNS)
    # previous stays on v1 for a manual rollback for a day, then is released.
    rollouts, _, update, _, decision = _advance(rollouts, 12)
    assert update == AliasUpdate() and decision["decision"] == "none"
    rollouts, _, update, _, decision = _advance(rollouts, 13)
    assert update == AliasUpdate(delete_aliases=["previous"])
    assert decision["decision"] == "release_previous"
    assert rollouts["previous_released"].tolist() == ["2024-03-20"]
    _, _, update, _, decision = _advance(rollouts, 14)
    assert update == AliasUpdate() and decision["decision"] == "none"


def _promotions() -> pd.DataFrame:
    """v1 bootstrapped, v2 promoted over it: the promotion history a rollback reads."""
    rows = [
        {"action": "bootstrap", "champion_before": None, "champion_after": 1},
        {"action": "promote", "champion_before": 1, "champion_after": 2},
    ]
    return pd.DataFrame(rows).reindex(columns=list(HISTORY_COLUMNS)).astype(HISTORY_COLUMNS)


def test_a_bad_candidate_is_rolled_back_at_the_canary_stage():
    """One canary symbol, wrong every day where the baseline is right: the drop shows from the
    first matured session, but a sign test needs five discordant sessions (p = 1/32)."""
    rollouts = _started()
    for day in (1, 2, 3, 4, 5):
        rollouts, _, update, _, decision = _advance(rollouts, day, good=False)
        assert decision["decision"] == "hold" and update == AliasUpdate()
    assert decision["reasons"][1].startswith(
        "accuracy_drop: candidate 0.0000 vs baseline 1.0000 on the canary cohort"
    )
    assert decision["pvalues"]["accuracy"] == pytest.approx(1 / 16)
    rollouts, steps, update, history, decision = _advance(
        rollouts, 6, good=False, history=_promotions()
    )
    assert decision["decision"] == "rollback"
    assert decision["reasons"][0].startswith("accuracy_drop: candidate 0.0000 vs baseline 1.0000")
    assert decision["pvalues"]["accuracy"] == pytest.approx(1 / 32)
    assert decision["metrics"]["canary"]["rank_ic"] is None  # one symbol: no IC, null in JSON
    json.dumps(decision, allow_nan=False)
    metrics = decision["metrics"]
    assert (metrics["canary"]["predictions"], metrics["control"]["predictions"]) == (5, 5)
    assert metrics["control_cohort"]["predictions"] == 25
    assert update.set_aliases == {"champion": 1}
    assert update.delete_aliases == ["previous"]  # v1 never replaced a recorded champion
    assert update.version_tags[2]["rollout"] == "failed"
    assert history[["action", "champion_before", "champion_after"]].tail(1).to_dict("records") == [
        {"action": "rollout_rollback", "champion_before": 2, "champion_after": 1}
    ]
    (row,) = rollouts.to_dict("records")
    assert row["status"] == "failed" and "accuracy_drop" in row["reasons"]
    assert steps["decision"].tolist() == ["rollback"]


def test_a_drop_that_never_becomes_significant_rolls_back_after_max_stage_sessions():
    rollout = {**ROLLOUT, "health": {**ROLLOUT["health"], "significance": 0.001}}
    rollouts = start_rollout(_promotion(), _empty(ROLLOUT_COLUMNS), rollout, _run(0))
    decisions = []
    for day in range(1, 12):
        state = rollouts[rollouts["status"] == "active"]
        if state.empty:
            break
        run = _run(day)
        labels = _labels()
        labels.loc[labels["date"] >= DAYS[day], ["label_up", "forward_return"]] = np.nan
        rollouts, _, _, _, decision = advance_rollout(
            rollouts,
            {"action": "none"},
            _log(state.iloc[0].to_dict(), day, run, good=False),
            labels,
            _model_input(day),
            _registry(),
            _empty(HISTORY_COLUMNS),
            _empty(ROLLOUT_HISTORY_COLUMNS),
            UNIVERSE,
            rollout,
            1,
            252,
            run,
        )
        decisions.append(decision["decision"])
    assert decisions == ["hold"] * 8 + ["rollback"]
    assert "not recovered after 8 matured sessions" in decision["reasons"][0]


def test_a_missing_prediction_breaches_at_once():
    rollouts, _, update, _, decision = _advance(_started(), 1, skip=("CCC",))
    assert decision["decision"] == "rollback"
    assert decision["reasons"] == [
        "missing_predictions: 1; no prediction on 2024-03-04 for ['CCC']"
    ]
    # No promotion history: previous goes to the candidate, so the rollback can be undone.
    assert update.set_aliases == {"champion": 1, "previous": 2}


def test_a_registry_moved_by_hand_aborts_the_rollout_without_moving_it_back():
    rollouts, _, update, _, decision = _advance(_started(), 1, registry=_registry(champion=1))
    assert decision["decision"] == "abort" and update == AliasUpdate()
    assert rollouts["status"].tolist() == ["aborted"]


def test_a_shadow_promotion_starts_a_rollout_in_the_daily_step():
    shadow = {**_promotion(), "action": "promote_after_shadow"}
    rollouts, _, update, _, decision = _advance(_empty(ROLLOUT_COLUMNS), 0, shadow=shadow)
    assert rollouts[["started_by", "status"]].to_dict("records") == [
        {"started_by": "shadow", "status": "active"}
    ]
    assert decision["decision"] == "hold"


def test_cohort_metrics_by_hand():
    matured = pd.DataFrame(
        {
            "as_of_date": [DAYS[0]] * 3 + [DAYS[1]] * 3,
            "symbol": ["A", "B", "C"] * 2,
            "score": [0.9, 0.5, 0.1, 0.2, 0.6, 0.7],
            "predicted_up": [1, 1, 0, 0, 1, 1],
            "label_up": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            "forward_return": [0.03, -0.01, -0.02, -0.01, 0.02, -0.01],
        }
    )
    metrics = cohort_metrics(matured, periods_per_year=252)
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    # day 1: long A, B short C → (0.03 - 0.01 + 0.02) / 3; day 2: short A, long B, C → 0.02/3
    daily = np.array([0.04 / 3, 0.02 / 3])
    assert metrics["sharpe"] == pytest.approx(daily.mean() / daily.std(ddof=1) * math.sqrt(252))
    # day 1 ranks agree (1.0); day 2: scores C > B > A, returns B > A = C (0.0)
    assert metrics["rank_ic"] == pytest.approx(0.5)
    assert cohort_metrics(matured.iloc[0:0], 252)["dates"] == 0


def test_the_rollout_history_is_plotted():
    rollouts, _, _, _, _ = _advance(_started(), 1)
    _, steps, _, _, _ = _advance(rollouts, 2)
    figure = plot_rollout_history(steps)
    assert figure.axes[0].get_ylabel() == "canary share, %"
    assert len(figure.axes[1].lines) == 2  # the canary and control accuracy of the one rollout
