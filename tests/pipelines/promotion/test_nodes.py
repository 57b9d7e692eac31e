"""Promotion gates and rollback planning: a failing gate never moves ``champion``."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from stock_ml.models import AliasUpdate, RegistryState, ServingModel
from stock_ml.pipelines.promotion.nodes import (
    HISTORY_COLUMNS,
    collect_shadow_decisions,
    decide_promotion,
    evaluate_gate,
    gate_name,
    model_card,
    plan_rollback,
    promote_after_shadow,
)

RUN = {"id": "run-7", "time": "2026-11-23T10:00:00+00:00"}
NAME = "test_stock_ml_direction"
GOOD = {"sharpe": 1.5, "max_drawdown": 0.10, "win_rate": 0.6, "trades": 120.0, "roc_auc": 0.56}
SEED_002 = [
    {"metric": "sharpe", "op": ">", "value": 2.0},
    {"metric": "max_drawdown", "op": "<", "value": 0.15},
    {"metric": "win_rate", "op": ">", "value": 0.55},
    {"metric": "trades", "op": ">=", "value": 100},
]


def _promotion(gates: list[dict], rule: str = "gates") -> dict:
    return {
        "gate_set": "chosen",
        "gate_sets": {"chosen": gates},
        "when_no_champion": rule,
        "champion_gate": {"metric": "sharpe", "op": ">", "margin": 0.1},
    }


def _report(**scorers: dict) -> pd.DataFrame:
    return pd.DataFrame([{"scorer": name, **values} for name, values in scorers.items()])


def _registry(aliases: dict[str, int], versions: int = 3) -> RegistryState:
    return RegistryState(NAME, aliases, {v: {} for v in range(1, versions + 1)})


def _challenger(version: int = 3) -> ServingModel:
    return ServingModel(model=None, name=NAME, alias="challenger", version=version, run_id="r")


def _empty_history() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in HISTORY_COLUMNS.items()})


def _decide(report, registry, gates, rule="gates", history=None):
    return decide_promotion(
        _challenger(),
        registry,
        report,
        _empty_history() if history is None else history,
        _promotion(gates, rule),
        RUN,
    )


def test_gates_compare_with_values_and_with_other_scorers():
    rows = {"model": GOOD, "momentum": {"sharpe": 1.4}, "champion": {"sharpe": 1.45}}
    assert evaluate_gate({"metric": "sharpe", "op": ">", "value": 1.0}, rows)["passed"]
    assert not evaluate_gate({"metric": "sharpe", "op": ">", "value": 1.5}, rows)["passed"]
    assert evaluate_gate({"metric": "sharpe", "op": ">=", "value": 1.5}, rows)["passed"]
    assert evaluate_gate({"metric": "max_drawdown", "op": "<", "value": 0.15}, rows)["passed"]
    beats = evaluate_gate({"metric": "sharpe", "op": ">", "than": "momentum"}, rows)
    assert beats["passed"] and beats["threshold"] == 1.4
    margin = evaluate_gate({"metric": "sharpe", "op": ">", "than": "champion", "margin": 0.1}, rows)
    assert not margin["passed"] and margin["threshold"] == pytest.approx(1.55)
    assert "sharpe 1.5 is not > 1.55" in margin["reason"]
    # for lower-is-better comparisons the margin shifts the other way
    lower = evaluate_gate(
        {"metric": "max_drawdown", "op": "<", "than": "champion", "margin": 0.05},
        {"model": GOOD, "champion": {"max_drawdown": 0.12}},
    )
    assert lower["threshold"] == pytest.approx(0.07) and not lower["passed"]
    undefined = evaluate_gate({"metric": "rank_ic_tstat", "op": ">", "value": 2}, rows)
    assert not undefined["passed"] and undefined["reason"] == "metric undefined"
    assert gate_name({"metric": "sharpe", "op": ">", "than": "champion", "margin": 0.1}) == (
        "sharpe_gt_champion_plus_0.1"
    )


@pytest.mark.parametrize("bad", [{"op": "=="}, {"value": 1, "than": "momentum"}, {"metric": None}])
def test_malformed_gates_are_refused(bad):
    gate = {"metric": "sharpe", "op": ">", "value": 1.0, **bad}
    if gate["metric"] is None:
        del gate["metric"]
    with pytest.raises(ValueError, match="promotion gate"):
        evaluate_gate(gate, {"model": GOOD})


def test_a_challenger_passing_every_gate_becomes_champion():
    report = _report(model=GOOD, champion={**GOOD, "sharpe": 1.2})
    decision, update, history, metrics = _decide(report, _registry({"champion": 2}), SEED_002[1:])
    assert decision["promoted"] and decision["action"] == "promote"
    assert update.set_aliases == {"champion": 3, "previous": 2}
    assert update.delete_aliases == ["challenger"]
    assert update.version_tags[3]["promotion_action"] == "promote"
    assert [g["gate"] for g in decision["gates"]][-1] == "sharpe_gt_champion_plus_0.1"
    assert metrics["promoted"]["value"] == 1.0
    assert metrics["sharpe_gt_champion_plus_0.1.value"]["value"] == 1.5
    assert history.iloc[-1]["action"] == "promote"
    assert (history.iloc[-1]["champion_before"], history.iloc[-1]["champion_after"]) == (2, 3)


@pytest.mark.parametrize("failing", range(len(SEED_002) + 1))
def test_any_single_failing_gate_keeps_the_champion(failing):
    """Each of seed 002's gates, and the champion margin, alone blocks the promotion."""
    model = {"sharpe": 2.5, "max_drawdown": 0.10, "win_rate": 0.6, "trades": 150.0}
    breaks = [
        {"sharpe": 1.9},
        {"max_drawdown": 0.15},
        {"win_rate": 0.55},
        {"trades": 99.0},
        {},  # the champion gate: champion at 2.45 needs the model above 2.55
    ][failing]
    champion_sharpe = 2.45 if failing == len(SEED_002) else 1.0
    report = _report(model={**model, **breaks}, champion={**model, "sharpe": champion_sharpe})
    decision, update, history, metrics = _decide(report, _registry({"champion": 2}), SEED_002)
    assert not decision["promoted"] and decision["action"] == "reject"
    assert decision["champion_after"] == 2
    assert update.set_aliases == {} and update.delete_aliases == [], "no alias moves"
    failed = [g for g in decision["gates"] if not g["passed"]]
    assert len(failed) == 1 and failed[0]["gate"] in decision["summary"]
    assert update.version_tags[3]["promotion_failed_gates"] == failed[0]["gate"]
    assert metrics["promoted"]["value"] == 0.0
    assert json.loads(history.iloc[-1]["failed_gates"]) == [failed[0]["gate"]]


def test_no_champion_with_the_gates_rule_needs_the_gates():
    failing = _report(model={**GOOD, "sharpe": 0.1})
    decision, update, _, _ = _decide(failing, _registry({}), SEED_002, rule="gates")
    assert not decision["promoted"] and update.set_aliases == {}
    assert "nothing is served until a model passes" in decision["summary"]
    passing = _report(model={**GOOD, "sharpe": 2.5})
    decision, update, _, _ = _decide(passing, _registry({}), SEED_002, rule="gates")
    assert decision["promoted"] and update.set_aliases == {"champion": 3}
    assert [g["gate"] for g in decision["gates"]] == [
        "sharpe_gt_2.0", "max_drawdown_lt_0.15", "win_rate_gt_0.55", "trades_ge_100",
    ]  # fmt: skip


def test_bootstrap_promotes_the_first_model_and_records_it():
    failing = _report(model={**GOOD, "sharpe": 0.1})
    decision, update, history, _ = _decide(failing, _registry({}), SEED_002, rule="bootstrap")
    assert decision["action"] == "bootstrap" and decision["promoted"]
    assert update.set_aliases == {"champion": 3}
    assert json.loads(history.iloc[-1]["failed_gates"]) == ["sharpe_gt_2.0"]
    # … but only the first: with a champion, bootstrap changes nothing
    decision, update, _, _ = _decide(failing, _registry({"champion": 1}), SEED_002, "bootstrap")
    assert decision["action"] == "reject" and update.set_aliases == {}


def test_a_champion_that_cannot_be_scored_blocks_promotion_with_a_reason():
    report = _report(model={**GOOD, "sharpe": 2.5})  # no champion row: features changed
    decision, update, _, _ = _decide(report, _registry({"champion": 2}), SEED_002)
    assert not decision["promoted"] and update.set_aliases == {}
    assert "could not be scored on this holdout" in decision["summary"]


def test_unknown_gate_set_or_rule_is_refused():
    with pytest.raises(ValueError, match="gate_set 'chosen' is not one of"):
        decide_promotion(
            _challenger(),
            _registry({}),
            _report(model=GOOD),
            _empty_history(),
            {**_promotion([]), "gate_sets": {"default": []}},
            RUN,
        )
    with pytest.raises(ValueError, match="when_no_champion must be one of"):
        _decide(_report(model=GOOD), _registry({}), [], rule="always")
    with pytest.raises(ValueError, match="No 'challenger' version"):
        decide_promotion(
            None, _registry({}), _report(model=GOOD), _empty_history(), _promotion([]), RUN
        )


def test_history_accumulates_and_rollback_steps_back_one_champion_at_a_time():
    history = _empty_history()
    # v1 bootstrap, v2 promoted over v1, v3 promoted over v2
    for version, before in [(1, None), (2, 1), (3, 2)]:
        aliases = {"champion": before} if before else {}
        _, _, history, _ = decide_promotion(
            _challenger(version),
            _registry(aliases),
            _report(model={**GOOD, "sharpe": 3.0}, champion={**GOOD, "sharpe": 0.0}),
            history,
            _promotion(SEED_002[1:], "bootstrap"),
            RUN,
        )
    assert history["champion_after"].tolist() == [1, 2, 3]
    registry = _registry({"champion": 3, "previous": 2})
    decision, update, history = plan_rollback(registry, history, {"to_version": None}, RUN)
    assert (decision["champion_before"], decision["champion_after"]) == (3, 2)
    assert update.set_aliases == {"champion": 2, "previous": 1}, "v2's own predecessor"
    assert update.version_tags == {3: {"rolled_back_at": RUN["time"]}}
    registry = _registry({"champion": 2, "previous": 1})
    decision, update, history = plan_rollback(registry, history, {"reason": "drift"}, RUN)
    assert update.set_aliases == {"champion": 1} and update.delete_aliases == ["previous"]
    assert history["action"].tolist()[-2:] == ["rollback", "rollback"]
    assert history.iloc[-1]["reasons"] == "drift"
    with pytest.raises(ValueError, match="no 'previous' alias"):
        plan_rollback(_registry({"champion": 1}), history, {}, RUN)


def test_rollback_to_a_named_version_and_its_checks():
    history = _empty_history()
    registry = _registry({"champion": 1, "challenger": 3})
    decision, update, _ = plan_rollback(registry, history, {"to_version": 3}, RUN)
    assert update.set_aliases == {"champion": 3, "previous": 1}, "a pin can be undone"
    assert update.delete_aliases == ["challenger"], "v3 serves now"
    with pytest.raises(ValueError, match="has no version 9"):
        plan_rollback(registry, history, {"to_version": 9}, RUN)
    with pytest.raises(ValueError, match="already champion"):
        plan_rollback(registry, history, {"to_version": 1}, RUN)


def test_model_card_names_the_model_its_data_numbers_and_gates():
    report = _report(model={**GOOD, "accuracy": 0.51}, momentum={**GOOD, "sharpe": math.nan})
    decision, *_ = _decide(report, _registry({}), SEED_002, rule="bootstrap")
    best = {
        "family": "hist_gbm",
        "estimator": "sklearn.ensemble.HistGradientBoostingClassifier",
        "params": {"max_iter": 50},
        "profile": "quick",
        "n_trials": 8,
        "seed": 42,
        "objective": "rank_ic",
        "cv_score": 0.03,
        "search_seconds": 12.0,
    }
    window = {
        "train_start": "2020-01-02",
        "train_end": "2022-01-03",
        "holdout_start": "2022-01-14",
        "holdout_end": "2022-06-30",
        "train_rows": 900,
        "holdout_rows": 300,
        "purged_rows": 4,
        "embargo_sessions": 7,
    }
    lineage = {"dataset_run_id": "run-1", "feature_schema_hash": "abc", "features": ["a", "b"]}
    card = model_card(best, window, lineage, report, decision)
    assert card.startswith(f"# {NAME} v3")
    assert "**Decision:** bootstrap" in card
    assert "`hist_gbm`" in card and "`max_iter=50`" in card
    assert "Gold build `run-1`, feature schema `abc`, 2 features" in card
    assert "| model | 0.5100 | 0.5600 |" in card
    assert "| trades_ge_100 | 120.0000 | >= 100.0000 | pass |  |" in card
    assert "| sharpe_gt_2.0 | 1.5000 | > 2.0000 | FAIL |" in card


# --- the shadow stage ---------------------------------------------------------------------------

SHADOW = {"min_matured_days": 3, "metric": "accuracy", "min_win_share": 0.5}


def test_gates_passed_with_a_shadow_stage_wait_for_shadow_days():
    report = _report(model={**GOOD, "sharpe": 2.5}, champion={**GOOD, "sharpe": 1.0})
    promotion = {**_promotion(SEED_002), "shadow": SHADOW}
    decision, update, history, _ = decide_promotion(
        _challenger(), _registry({"champion": 2}), report, _empty_history(), promotion, RUN
    )
    assert decision["action"] == "shadow" and not decision["promoted"]
    assert update.set_aliases == {} and update.delete_aliases == [], "challenger keeps its alias"
    assert update.version_tags[3]["promotion_action"] == "shadow"
    assert history.iloc[-1]["action"] == "shadow"
    # a failing gate is still a plain rejection, and a first model is not held in shadow
    failing = _report(model={**GOOD, "sharpe": 0.1}, champion=GOOD)
    decision, *_ = decide_promotion(
        _challenger(), _registry({"champion": 2}), failing, _empty_history(), promotion, RUN
    )
    assert decision["action"] == "reject"
    decision, *_ = decide_promotion(
        _challenger(), _registry({}), report, _empty_history(), promotion, RUN
    )
    assert decision["action"] == "promote"


def _shadow_log(serving: list[float], shadow: list[float]) -> pd.DataFrame:
    days = pd.bdate_range("2024-04-01", periods=max(len(serving), len(shadow)))
    rows = [
        {"as_of_date": days[i], "model_version": 2, "role": "serving", "accuracy": a}
        for i, a in enumerate(serving)
    ] + [
        {"as_of_date": days[i], "model_version": 3, "role": "shadow", "accuracy": a}
        for i, a in enumerate(shadow)
    ]
    return pd.DataFrame(rows).assign(model_name=NAME, rank_ic=0.0)


def _in_shadow(action: str = "shadow") -> RegistryState:
    return RegistryState(
        NAME, {"champion": 2, "challenger": 3}, {2: {}, 3: {"promotion_action": action}}
    )


def _after_shadow(performance, registry=None):
    promotion = {**_promotion([]), "shadow": SHADOW}
    registry = registry or _in_shadow()
    return promote_after_shadow(performance, registry, _empty_history(), promotion, RUN)


def test_shadow_waits_until_enough_days_have_matured():
    decision, update, history = _after_shadow(_shadow_log([0.5, 0.5], [0.9, 0.9]))
    assert decision["action"] == "waiting" and decision["shadow_days"] == 2
    assert update == AliasUpdate() and history.empty


def test_a_shadow_that_beats_the_champion_is_promoted():
    decision, update, history = _after_shadow(
        _shadow_log([0.5, 0.6, 0.5, 0.4], [0.6, 0.5, 0.7, 0.4])
    )
    assert (decision["shadow_days"], decision["shadow_wins"]) == (4, 2), "a tie is not a win"
    assert decision["action"] == "promote_after_shadow" and decision["champion_after"] == 3
    assert update.set_aliases == {"champion": 3, "previous": 2}
    assert update.delete_aliases == ["challenger"]
    assert history.iloc[-1]["action"] == "promote_after_shadow"


def test_a_shadow_that_loses_is_rejected_and_stops_shadowing():
    decision, update, _ = _after_shadow(_shadow_log([0.6, 0.6, 0.6], [0.5, 0.7, 0.5]))
    assert decision["action"] == "shadow_rejected" and decision["champion_after"] == 2
    assert update.set_aliases == {} and update.delete_aliases == ["challenger"]
    assert update.version_tags == {3: {"promotion_action": "shadow_rejected"}}


def test_only_a_challenger_held_in_shadow_is_considered():
    log = _shadow_log([0.1] * 5, [0.9] * 5)
    for registry in [_in_shadow("reject"), RegistryState(NAME, {"champion": 2}, {2: {}})]:
        decision, update, _ = _after_shadow(log, registry)
        assert decision["action"] == "none" and update == AliasUpdate()


def test_a_shadow_decision_reads_only_its_own_models_performance():
    """Another symbol's model with the same version numbers must not count as shadow days."""
    other = _shadow_log([0.1] * 5, [0.9] * 5).assign(model_name="other_symbol_model")
    decision, update, _ = _after_shadow(pd.concat([other, _shadow_log([0.5], [0.6])]))
    assert decision["action"] == "waiting" and decision["shadow_days"] == 1
    assert update == AliasUpdate()


def test_per_symbol_shadow_decisions_are_collected():
    waiting, _, _ = _after_shadow(_shadow_log([0.5], [0.6]))
    promoted, _, _ = _after_shadow(_shadow_log([0.5, 0.6, 0.5, 0.4], [0.6, 0.5, 0.7, 0.4]))
    collected = collect_shadow_decisions(waiting, promoted, symbols=("AAA", "BBB"))
    assert collected == {
        "decided": {"BBB": "promote_after_shadow"},
        "by_symbol": {"AAA": waiting, "BBB": promoted},
    }
    with pytest.raises(ValueError, match="1 shadow decisions for 2 symbols"):
        collect_shadow_decisions(waiting, symbols=("AAA", "BBB"))
