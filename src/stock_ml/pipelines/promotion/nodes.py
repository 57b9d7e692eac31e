"""Champion/challenger: gates decide whether ``champion`` moves; rollback moves it back.

Every training run registers its model as ``challenger``. ``decide_promotion`` checks the
challenger's holdout row against the env's gate set (absolute thresholds and margins over the
naive baselines) and against the current champion scored on the *same* holdout. Only when every
gate passes does the decision ask the registry dataset to move ``champion`` (and ``previous`` to
the champion it replaces). A rejected challenger keeps its ``challenger`` alias (for shadow
scoring). Every decision — gates, values, thresholds, outcome — is returned for MLflow and
appended to the promotion history.

With no champion yet, ``when_no_champion`` says what happens: ``gates`` (the first model must
pass the gate set like any other; until one does, there is nothing to serve) or ``bootstrap``
(the first model becomes champion whatever its gates say, recorded as a bootstrap; for dev and
test envs, which need something to serve).
"""

from __future__ import annotations

import json
import logging
import math
import operator

import pandas as pd

from stock_ml.model_scope import zip_symbols
from stock_ml.models import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS,
    SERVING,
    SHADOW,
    AliasUpdate,
    RegistryState,
    ServingModel,
    of_model,
)
from stock_ml.pipelines.training.evaluation import HEADLINE_METRICS

logger = logging.getLogger(__name__)

OPERATORS = {
    ">": (operator.gt, "gt"),
    ">=": (operator.ge, "ge"),
    "<": (operator.lt, "lt"),
    "<=": (operator.le, "le"),
}
NO_CHAMPION_RULES = {"gates", "bootstrap"}
HISTORY_COLUMNS = {
    "decided_at": "object",
    "run_id": "object",
    "model_name": "object",
    "action": "object",
    "champion_before": "Int64",
    "champion_after": "Int64",
    "challenger_version": "Int64",
    "gate_set": "object",
    "failed_gates": "object",
    "reasons": "object",
}


def gate_name(gate: dict) -> str:
    """``sharpe_gt_2.0``, ``sharpe_gt_champion_plus_0.1``: stable names, valid as MLflow keys."""
    if "name" in gate:
        return str(gate["name"])
    _, word = OPERATORS[gate["op"]]
    if "value" in gate:
        return f"{gate['metric']}_{word}_{gate['value']}"
    margin = float(gate.get("margin", 0.0))
    return f"{gate['metric']}_{word}_{gate['than']}" + (f"_plus_{margin}" if margin else "")


def check_gate(gate: dict) -> None:
    """A gate names a metric, an operator, and either a fixed value or a scorer to beat."""
    if gate.get("op") not in OPERATORS:
        raise ValueError(f"promotion gate {gate}: op must be one of {sorted(OPERATORS)}")
    if ("value" in gate) == ("than" in gate):
        raise ValueError(f"promotion gate {gate}: give exactly one of 'value' or 'than'")
    if "metric" not in gate:
        raise ValueError(f"promotion gate {gate}: 'metric' is missing")


def evaluate_gate(gate: dict, report: dict[str, dict]) -> dict:
    """One gate's outcome on the holdout report (rows keyed by scorer).

    ``than: <scorer>`` compares with that scorer's value on the same holdout, shifted by
    ``margin`` in the gate's favourable direction. A metric that is undefined (NaN) fails.
    """
    check_gate(gate)
    compare, _ = OPERATORS[gate["op"]]
    value = report["model"].get(gate["metric"], math.nan)
    result = {"gate": gate_name(gate), "metric": gate["metric"], "op": gate["op"], "value": value}
    if "value" in gate:
        threshold = float(gate["value"])
    else:
        other = report.get(gate["than"])
        if other is None:
            return {
                **result,
                "threshold": math.nan,
                "passed": False,
                "reason": f"no '{gate['than']}' scores on this holdout",
            }
        margin = float(gate.get("margin", 0.0))
        shift = margin if gate["op"] in {">", ">="} else -margin
        threshold = float(other.get(gate["metric"], math.nan)) + shift
    if math.isnan(value) or math.isnan(threshold):
        return {**result, "threshold": threshold, "passed": False, "reason": "metric undefined"}
    passed = bool(compare(value, threshold))
    reason = "" if passed else f"{gate['metric']} {value:.4g} is not {gate['op']} {threshold:.4g}"
    return {**result, "threshold": threshold, "passed": passed, "reason": reason}


def decide_promotion(
    challenger: ServingModel | None,
    registry: RegistryState,
    report: pd.DataFrame,
    stored_history: pd.DataFrame,
    promotion: dict,
    run: dict,
) -> tuple[dict, AliasUpdate, pd.DataFrame, dict]:
    """Gate the challenger; ``champion`` moves only if every gate passes (or by bootstrap)."""
    if challenger is None:
        raise ValueError(
            f"No '{CHALLENGER}' version of '{registry.model_name}' to decide on: run the training "
            "pipeline (it registers one) before its promotion step"
        )
    gate_set_name = promotion["gate_set"]
    if gate_set_name not in promotion["gate_sets"]:
        raise ValueError(
            f"promotion.gate_set '{gate_set_name}' is not one of {sorted(promotion['gate_sets'])}"
        )
    rule = promotion["when_no_champion"]
    if rule not in NO_CHAMPION_RULES:
        raise ValueError(f"promotion.when_no_champion must be one of {sorted(NO_CHAMPION_RULES)}")
    rows = {row["scorer"]: row for row in report.to_dict(orient="records")}
    champion_version = registry.version_of(CHAMPION)
    results = [evaluate_gate(gate, rows) for gate in promotion["gate_sets"][gate_set_name]]
    if champion_version is not None:
        champion_gate = {**promotion["champion_gate"], "than": CHAMPION}
        outcome = evaluate_gate(champion_gate, rows)
        if CHAMPION not in rows:
            outcome["reason"] = (
                f"champion v{champion_version} could not be scored on this holdout (it reads "
                "features this gold build lacks); promote by hand with the rollback pipeline's "
                "rollback_to_version if intended"
            )
        results.append(outcome)
    failed = [r for r in results if not r["passed"]]
    shadow_days = int(promotion.get("shadow", {}).get("min_matured_days", 0))
    if champion_version is None and rule == "bootstrap":
        action, promote = "bootstrap", True
        summary = "no champion yet: bootstrap rule promotes the first model"
    elif not failed and champion_version is not None and shadow_days > 0:
        action, promote = SHADOW, False
        summary = (
            f"every gate passed; champion moves after {shadow_days} matured shadow days in which "
            "the challenger beats it (promote_after_shadow, daily)"
        )
    else:
        promote = not failed
        action = "promote" if promote else "reject"
        summary = (
            "every gate passed"
            if promote
            else f"{len(failed)} of {len(results)} gates failed: "
            + "; ".join(f"{r['gate']} ({r['reason']})" for r in failed)
        )
    if champion_version is None and rule == "gates" and not promote:
        summary += " (no champion: nothing is served until a model passes)"
    decision = {
        "model_name": challenger.name,
        "challenger_version": challenger.version,
        "champion_before": champion_version,
        "champion_after": challenger.version if promote else champion_version,
        "action": action,
        "promoted": promote,
        "gate_set": gate_set_name,
        "when_no_champion": rule,
        "gates": results,
        "summary": summary,
        "decided_at": str(run["time"]),
        "run_id": str(run["id"]),
        "champion_train_end": registry.version_tags.get(champion_version, {}).get("train_end"),
    }
    log = logger.info if promote else logger.warning
    log("Promotion of %s v%d: %s — %s", challenger.name, challenger.version, action, summary)
    update = AliasUpdate(
        set_aliases={
            CHAMPION: challenger.version,
            **({PREVIOUS: champion_version} if champion_version else {}),
        }
        if promote
        else {},
        delete_aliases=[CHALLENGER] if promote else [],
        version_tags={
            challenger.version: {
                "promotion_action": action,
                "promotion_gate_set": gate_set_name,
                "promotion_failed_gates": ",".join(r["gate"] for r in failed) or "none",
                "promotion_decided_at": str(run["time"]),
            }
        },
    )
    history = append_history(stored_history, decision, failed)
    metrics = {"promoted": {"value": float(promote), "step": 0}}
    for result in results:
        if not math.isnan(result["value"]):
            metrics[f"{result['gate']}.value"] = {"value": result["value"], "step": 0}
        metrics[f"{result['gate']}.passed"] = {"value": float(result["passed"]), "step": 0}
    return decision, update, history, metrics


def append_history(stored: pd.DataFrame, decision: dict, failed: list[dict]) -> pd.DataFrame:
    """The promotion history with this decision's row added (one row per decision)."""
    row = {
        "decided_at": decision["decided_at"],
        "run_id": decision["run_id"],
        "model_name": decision["model_name"],
        "action": decision["action"],
        "champion_before": decision["champion_before"],
        "champion_after": decision["champion_after"],
        "challenger_version": decision.get("challenger_version"),
        "gate_set": decision.get("gate_set"),
        "failed_gates": json.dumps([r["gate"] for r in failed]),
        "reasons": decision["summary"],
    }
    new = pd.DataFrame([row]).astype(HISTORY_COLUMNS)
    history = pd.concat([stored.astype(HISTORY_COLUMNS), new], ignore_index=True)
    return history[list(HISTORY_COLUMNS)]


def promote_after_shadow(
    performance: pd.DataFrame,
    registry: RegistryState,
    stored_history: pd.DataFrame,
    promotion: dict,
    run: dict,
) -> tuple[dict, AliasUpdate, pd.DataFrame]:
    """Finish a promotion that waits on shadow days (``promotion.shadow``), run daily.

    A challenger whose gates passed at training (tag ``promotion_action: shadow``) is scored in
    shadow beside the champion. Once at least ``min_matured_days`` as-of dates have matured
    predictions of both, it becomes champion if it beat the champion's ``metric`` on at least
    ``min_win_share`` of them; otherwise it is rejected and stops shadowing. Until then nothing
    moves.
    """
    settings = promotion.get("shadow", {})
    champion, challenger = registry.version_of(CHAMPION), registry.version_of(CHALLENGER)
    decision = {
        "model_name": registry.model_name,
        "champion_before": champion,
        "challenger_version": challenger,
        "decided_at": str(run["time"]),
        "run_id": str(run["id"]),
    }
    waiting = challenger is not None and champion is not None and challenger != champion
    tags = registry.version_tags.get(challenger, {}) if waiting else {}
    if tags.get("promotion_action") != SHADOW:
        decision.update(action="none", champion_after=champion, summary="no challenger in shadow")
        return decision, AliasUpdate(), stored_history.astype(HISTORY_COLUMNS)
    metric = settings.get("metric", "accuracy")
    performance = of_model(performance, registry.model_name)
    both = performance[
        ((performance["role"] == SERVING) & (performance["model_version"] == champion))
        | ((performance["role"] == SHADOW) & (performance["model_version"] == challenger))
    ].pivot_table(index="as_of_date", columns="role", values=metric)
    both = both.dropna() if {SERVING, SHADOW} <= set(both.columns) else both.iloc[0:0]
    days = len(both)
    wins = int((both[SHADOW] > both[SERVING]).sum()) if days else 0
    needed, share = int(settings["min_matured_days"]), float(settings["min_win_share"])
    decision.update(shadow_days=days, shadow_wins=wins, metric=metric)
    if days < needed:
        decision.update(
            action="waiting",
            champion_after=champion,
            summary=f"{days} of {needed} matured shadow days so far ({wins} won on {metric})",
        )
        return decision, AliasUpdate(), stored_history.astype(HISTORY_COLUMNS)
    promote = wins / days >= share
    summary = (
        f"challenger beat the champion on {metric} on {wins} of {days} matured shadow days "
        f"({'≥' if promote else '<'} {share:.0%})"
    )
    decision.update(
        action="promote_after_shadow" if promote else "shadow_rejected",
        champion_after=challenger if promote else champion,
        summary=summary,
    )
    logger.log(logging.INFO if promote else logging.WARNING, "Shadow decision: %s", summary)
    update = AliasUpdate(
        set_aliases={CHAMPION: challenger, PREVIOUS: champion} if promote else {},
        delete_aliases=[CHALLENGER],
        version_tags={challenger: {"promotion_action": decision["action"]}},
    )
    history = append_history(stored_history, {**decision, "gate_set": SHADOW}, [])
    return decision, update, history


def collect_shadow_decisions(*by_symbol: dict, symbols: tuple[str, ...]) -> dict:
    """The per-symbol models' shadow decisions as one record: each symbol's, and who moved."""
    decisions = zip_symbols(by_symbol, symbols, "shadow decisions")
    moved = {
        symbol: decision["action"]
        for symbol, decision in decisions.items()
        if decision["action"] not in ("none", "waiting")
    }
    return {"decided": moved, "by_symbol": decisions}


# History actions that made a version champion over the one before it (rollbacks do not).
PROMOTING_ACTIONS = ("promote", "bootstrap", "promote_after_shadow", "rollout_start")


def previous_after_rollback(history: pd.DataFrame, target: int, current: int | None) -> int | None:
    """What ``previous`` points at once ``target`` serves again.

    A version that was promoted before gets back the champion it had replaced, so a second
    rollback steps further back (never forward to the version just rolled back from). A version
    pinned by hand that never served gets the champion it replaces, so the pin can be undone.
    """
    served = history[history["champion_after"] == target]
    promoted = served[served["action"].isin(PROMOTING_ACTIONS)]
    if len(promoted):
        before = promoted["champion_before"].iloc[-1]
        return None if pd.isna(before) else int(before)
    return None if len(served) else current


def plan_rollback(
    registry: RegistryState, stored_history: pd.DataFrame, rollback: dict, run: dict
) -> tuple[dict, AliasUpdate, pd.DataFrame]:
    """Move ``champion`` back to ``previous`` (or to ``rollback.to_version``) and record why.

    After the rollback, ``previous`` points at the champion the target itself replaced (from the
    promotion history), so a second rollback steps back again; the rolled-back version is tagged.
    A ``challenger`` alias on the target is dropped (it is serving now).
    """
    current = registry.version_of(CHAMPION)
    requested = rollback.get("to_version")
    target = int(requested) if requested is not None else registry.version_of(PREVIOUS)
    if target is None:
        raise ValueError(
            f"Nothing to roll back to for '{registry.model_name}': no '{PREVIOUS}' alias. Name a "
            "version: kedro run --pipeline rollback (per symbol: rollback_<symbol>) "
            "--params rollback_to_version=<N>"
        )
    if target not in registry.version_tags:
        raise ValueError(
            f"'{registry.model_name}' has no version {target} "
            f"(versions: {sorted(registry.version_tags)})"
        )
    if target == current:
        raise ValueError(f"Version {target} of '{registry.model_name}' is already champion")
    new_previous = previous_after_rollback(stored_history, target, current)
    decision = {
        "model_name": registry.model_name,
        "action": "rollback",
        "champion_before": current,
        "champion_after": target,
        "previous_after": new_previous,
        "reason": str(rollback.get("reason") or "manual rollback"),
        "decided_at": str(run["time"]),
        "run_id": str(run["id"]),
    }
    logger.warning(
        "Rollback of %s: champion v%s → v%d (%s)",
        registry.model_name,
        current,
        target,
        decision["reason"],
    )
    update = AliasUpdate(
        set_aliases={CHAMPION: target, **({PREVIOUS: new_previous} if new_previous else {})},
        delete_aliases=([] if new_previous else [PREVIOUS])
        + ([CHALLENGER] if registry.version_of(CHALLENGER) == target else []),
        version_tags={current: {"rolled_back_at": str(run["time"])}} if current else {},
    )
    history = append_history(
        stored_history, {**decision, "summary": decision["reason"], "gate_set": None}, []
    )
    return decision, update, history


def _cell(value) -> str:
    if isinstance(value, str):
        return value
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.4f}"


def model_card(
    best: dict, window: dict, lineage: dict, report: pd.DataFrame, decision: dict
) -> str:
    """A markdown card for the registered version: what it is, what it learnt from, how it did."""
    columns = ["scorer", *HEADLINE_METRICS]
    table = report[[c for c in columns if c in report]]
    header = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "---|" * len(table.columns)
    body = [
        "| " + " | ".join(_cell(v) for v in row) + " |" for row in table.itertuples(index=False)
    ]
    gates = [
        f"| {g['gate']} | {g['value']:.4f} | {g['op']} {g['threshold']:.4f} | "
        f"{'pass' if g['passed'] else 'FAIL'} | {g['reason']} |"
        for g in decision["gates"]
    ]
    params = ", ".join(f"`{k}={v}`" for k, v in best["params"].items())
    return "\n".join(
        [
            f"# {decision['model_name']} v{decision['challenger_version']}",
            "",
            f"**Decision:** {decision['action']} — {decision['summary']}",
            "",
            "## Model",
            f"- Family: `{best['family']}` ({best['estimator']}), {params}",
            f"- Search: profile `{best['profile']}`, {best['n_trials']} trials, seed "
            f"{best['seed']}, objective `{best['objective']}` (walk-forward CV mean "
            f"{best['cv_score']:.4f}), {best['search_seconds']:.1f} s",
            "",
            "## Data",
            f"- Gold build `{lineage['dataset_run_id']}`, feature schema "
            f"`{lineage['feature_schema_hash']}`, {len(lineage['features'])} features",
            f"- Trained {window['train_start']}..{window['train_end']} ({window['train_rows']} "
            f"rows, {window['purged_rows']} purged, {window['embargo_sessions']}-session embargo)",
            f"- Held out {window['holdout_start']}..{window['holdout_end']} "
            f"({window['holdout_rows']} rows)",
            "",
            "## Holdout: model, champion and naive baselines",
            "Backtest: long the top-k scores, equal weight, rebalanced every few sessions, costs "
            "on traded notional (parameters_training.yml). always_up holds the whole universe.",
            "",
            header,
            rule,
            *body,
            "",
            f"## Gates (`{decision['gate_set']}`)",
            "| gate | value | needs | result | reason |",
            "|---|---|---|---|---|",
            *gates,
            "",
        ]
    )
