"""Staged rollout: start one when a new champion is promoted, judge it daily, advance, complete or
roll back (stock_ml.rollout holds the state table and the cohort rule).

A promotion (at training, after a shadow stage, or by hand) moves ``champion`` to the new version
and ``previous`` to the one it replaced, as without a rollout; with ``rollout.enabled`` it also
starts a rollout, so inference serves the new version (the candidate) to the first stage's canary
cohort only and the previous one (the baseline) to every other symbol. The baseline also scores
the canary cohort in shadow. Each daily run, after monitoring, judges the stage on the
predictions made since it began (as-of dates after ``stage_started``) whose labels have matured:

* errors, at any time: symbols with complete features but no serving prediction on this run's
  latest as-of date, and non-finite scores, beyond ``health.max_missing_predictions`` /
  ``health.max_scoring_errors``;
* the candidate against the baseline on the canary cohort's own symbols and sessions (paired, so
  a cohort of trending symbols does not pass for a good model): matured accuracy, mean daily
  rank IC (dates with three or more canary symbols) and the annualised Sharpe ratio of the daily
  long/short-by-direction return. A drop beyond ``health.max_<metric>_drop`` breaches when a
  one-sided paired test (a sign test on the sessions where one model was right and the other
  not; paired t-tests on daily returns and ICs) gives p < ``health.significance``, or once it
  has lasted ``health.max_stage_sessions`` matured sessions; until then it holds the stage. A
  canary of one symbol cannot tell noise from harm in three sessions; it should not be promoted
  on them either.

A breach rolls back at once: ``champion`` back to the baseline, the rollout ``failed`` with its
reasons. A stage with ``min_matured_sessions`` matured sessions and no drop beyond a limit
advances; the last stage (100 %, the baseline still in shadow) completes the rollout, and
``previous`` stays on the baseline for ``previous_retention_days`` for a manual rollback, then is
released. Every run appends one row to the rollout history; the control cohort's own metrics
(the baseline serving the other symbols) are recorded in the decision, not judged.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from stock_ml.models import (
    CHAMPION,
    PREVIOUS,
    SERVING,
    SHADOW,
    AliasUpdate,
    RegistryState,
    with_roles,
)
from stock_ml.pipelines.promotion.nodes import (
    HISTORY_COLUMNS,
    append_history,
    previous_after_rollback,
)
from stock_ml.pipelines.training.evaluation import daily_ic, sharpe_ratio
from stock_ml.rollout import (
    ABORTED,
    ACTIVE,
    COMPLETE,
    FAILED,
    ROLLOUT_COLUMNS,
    SUPERSEDED,
    active_rollout,
    canary_symbols,
)
from stock_ml.universe import symbol_calendars

if TYPE_CHECKING:
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

HOLD, ADVANCE, ROLLBACK, COMPLETED, ABORT, RELEASE, NONE = (
    "hold",
    "advance",
    "rollback",
    "complete",
    "abort",
    "release_previous",
    "none",
)

# One row per daily rollout step (conf/base/catalog.yml `rollout_history`).
ROLLOUT_HISTORY_COLUMNS = {
    "run_date": "object",
    "run_id": "object",
    "rollout_id": "object",
    "candidate_version": "Int64",
    "baseline_version": "Int64",
    "stage": "Int64",
    "share": "float64",
    "canary_symbols": "object",
    "canary_dates": "Int64",
    "control_dates": "Int64",
    "canary_predictions": "Int64",
    "control_predictions": "Int64",
    "canary_accuracy": "float64",
    "control_accuracy": "float64",
    "canary_rank_ic": "float64",
    "control_rank_ic": "float64",
    "canary_sharpe": "float64",
    "control_sharpe": "float64",
    "missing_predictions": "Int64",
    "scoring_errors": "Int64",
    "decision": "object",
    "reasons": "object",
}
HEALTH_METRICS = ("accuracy", "rank_ic", "sharpe")


def check_rollout(rollout: dict) -> None:
    """Refuse a malformed ``rollout`` block before anything moves."""
    stages = [float(s) for s in rollout["stages"]]
    if not stages or stages != sorted(stages) or stages[-1] != 1.0 or stages[0] <= 0:
        raise ValueError(f"rollout.stages must rise to 1.0 from above 0, got {rollout['stages']}")
    if int(rollout["min_matured_sessions"]) < 1:
        raise ValueError("rollout.min_matured_sessions must be ≥ 1")


def _table(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    return frame.reindex(columns=list(columns)).astype(columns)


def _with_row(rollouts: pd.DataFrame, row: dict) -> pd.DataFrame:
    """``rollouts`` with ``row`` replacing the row of its rollout id (or added)."""
    kept = rollouts[rollouts["rollout_id"] != row["rollout_id"]]
    return _table(pd.concat([kept, pd.DataFrame([row])], ignore_index=True), ROLLOUT_COLUMNS)


def new_rollout(
    rollouts: pd.DataFrame, decision: dict, rollout: dict, run: dict, started_by: str
) -> pd.DataFrame:
    """``rollouts`` with a new active rollout of the decision's promotion (an active one is
    superseded: its candidate is the new baseline)."""
    check_rollout(rollout)
    day = f"{pd.Timestamp(run['date']):%Y-%m-%d}"
    candidate, baseline = int(decision["champion_after"]), int(decision["champion_before"])
    table = _table(rollouts, ROLLOUT_COLUMNS)
    current = active_rollout(table)
    if current is not None:
        table = _with_row(
            table,
            {
                **current,
                "status": SUPERSEDED,
                "ended": day,
                "reasons": f"superseded by v{candidate}",
            },
        )
    row = {
        "rollout_id": f"{decision['model_name']}-v{candidate}-{day}",
        "model_name": decision["model_name"],
        "candidate_version": candidate,
        "baseline_version": baseline,
        "started_by": started_by,
        "started": day,
        "status": ACTIVE,
        "stage": 0,
        "share": float(rollout["stages"][0]),
        "stage_started": day,
        "ended": None,
        "previous_released": None,
        "reasons": None,
    }
    logger.warning(
        "Rollout %s started: v%d serves %.0f%% of the universe, v%d the rest",
        row["rollout_id"],
        candidate,
        100 * row["share"],
        baseline,
    )
    return _with_row(table, row)


def start_rollout(decision: dict, rollouts: pd.DataFrame, rollout: dict, run: dict) -> pd.DataFrame:
    """After a promotion decision: a new rollout when it moved ``champion`` from one version to
    another and rollouts are enabled; otherwise the state as it was. A first champion
    (bootstrap) has nothing to roll out against."""
    promoted = decision.get("action") == "promote" and decision.get("champion_before") is not None
    if not (rollout.get("enabled") and promoted):
        return _table(rollouts, ROLLOUT_COLUMNS)
    return new_rollout(rollouts, decision, rollout, run, "promotion")


def plan_manual_rollout(
    registry: RegistryState, stored_history: pd.DataFrame, rollout: dict, run: dict
) -> tuple[dict, AliasUpdate, pd.DataFrame]:
    """``kedro run --pipeline rollout_start --params rollout_candidate=N``: version N becomes
    champion, the current champion ``previous``, and a rollout of N starts (rollouts enabled or
    not: asking for one is the point)."""
    requested = rollout.get("candidate_version")
    if requested is None:
        raise ValueError(
            "Name the version to roll out: kedro run --pipeline rollout_start "
            "--params rollout_candidate=<N>"
        )
    candidate, current = int(requested), registry.version_of(CHAMPION)
    if candidate not in registry.version_tags:
        raise ValueError(
            f"'{registry.model_name}' has no version {candidate} "
            f"(versions: {sorted(registry.version_tags)})"
        )
    if current is None or candidate == current:
        raise ValueError(
            f"A rollout needs a champion other than v{candidate} to serve the control cohort; "
            f"'{registry.model_name}' champion: {current}"
        )
    decision = {
        "model_name": registry.model_name,
        "action": "rollout_start",
        "champion_before": current,
        "champion_after": candidate,
        "challenger_version": candidate,
        "summary": f"manual rollout of v{candidate} over v{current}",
        "decided_at": str(run["time"]),
        "run_id": str(run["id"]),
        "gate_set": None,
    }
    update = AliasUpdate(set_aliases={CHAMPION: candidate, PREVIOUS: current})
    return decision, update, append_history(stored_history, decision, [])


def start_manual_rollout(
    decision: dict, rollouts: pd.DataFrame, rollout: dict, run: dict
) -> pd.DataFrame:
    """The rollout the manual command asked for."""
    return new_rollout(rollouts, decision, rollout, run, "manual")


# --- the daily step -----------------------------------------------------------------------------


def _partition_parts(key: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in key.split("/"))


def _logged_since(
    predictions: dict[str, Callable[[], pd.DataFrame]], versions: set[int]
) -> pd.DataFrame:
    """Predictions (serving and shadow) of ``versions`` (only their partitions are read)."""
    frames = [
        load()
        for key, load in predictions.items()
        if int(_partition_parts(key)["model_version"]) in versions
    ]
    if not frames:
        columns = ["symbol", "as_of_date", "model_version", "role", "score", "predicted_up"]
        return pd.DataFrame(columns=[*columns, "scored_by_run"])
    return with_roles(pd.concat(frames, ignore_index=True))


def _as_dates(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    return frame.assign(**{column: pd.to_datetime(frame[column])})


def _daily_returns(rows: pd.DataFrame) -> pd.Series:
    """Per as-of date, the equal-weight return of going long the symbols predicted up and short
    the others over the horizon."""
    sign = 2 * rows["predicted_up"].astype(float) - 1
    return (sign * rows["forward_return"]).groupby(rows["as_of_date"]).mean()


def _daily_ic(rows: pd.DataFrame) -> pd.Series:
    """Per as-of date, the rank IC of the scores (training's daily IC: NaN below three symbols)."""
    ic = daily_ic(rows.rename(columns={"as_of_date": "date"}), "score")
    return ic.set_index("date")["rank_ic"]


def cohort_metrics(matured: pd.DataFrame, periods_per_year: float) -> dict:
    """Accuracy, mean daily rank IC and annualised Sharpe of one model's matured predictions.

    The Sharpe ratio is that of the daily long/short-by-direction return (long the symbols
    predicted up, short the others, equal weights, over the horizon), annualised over
    ``periods_per_year`` (sessions a year / horizon); NaN with fewer than two dates or no
    variation."""
    if matured.empty:
        return {"dates": 0, "predictions": 0, **{m: math.nan for m in HEALTH_METRICS}}
    ics = _daily_ic(matured).dropna()
    return {
        "dates": int(matured["as_of_date"].nunique()),
        "predictions": len(matured),
        "accuracy": float((matured["predicted_up"] == matured["label_up"]).mean()),
        "rank_ic": float(ics.mean()) if len(ics) else math.nan,
        "sharpe": sharpe_ratio(_daily_returns(matured).to_numpy(), periods_per_year),
    }


def paired_pvalues(pairs: pd.DataFrame) -> dict[str, float]:
    """One-sided p-values that the candidate is worse than the baseline on the same (symbol,
    as-of date) pairs: a sign test on the pairs where only one of them was right (accuracy),
    paired t-tests on the daily long/short returns (Sharpe) and the daily rank ICs. NaN where
    there is too little to test (no discordant pair, fewer than three dates)."""
    from scipy.stats import binomtest, ttest_rel

    right = {w: pairs[f"predicted_up_{w}"] == pairs["label_up"] for w in ("canary", "base")}
    discordant = right["canary"] != right["base"]
    wins = int((right["canary"] & discordant).sum())
    accuracy = (
        binomtest(wins, int(discordant.sum()), 0.5, alternative="less").pvalue
        if discordant.any()
        else math.nan
    )

    def paired_t(daily: Callable[[pd.DataFrame], pd.Series]) -> float:
        both = pd.concat(
            [daily(_side(pairs, w)).rename(w) for w in ("canary", "base")], axis=1
        ).dropna()
        if len(both) < 3 or (both["canary"] - both["base"]).std() == 0:
            return math.nan
        return float(ttest_rel(both["canary"], both["base"], alternative="less").pvalue)

    return {
        "accuracy": float(accuracy),
        "sharpe": paired_t(_daily_returns),
        "rank_ic": paired_t(_daily_ic),
    }


def _side(pairs: pd.DataFrame, which: str) -> pd.DataFrame:
    """One model's columns of the paired table, under the plain names."""
    return pairs.rename(columns={f"{c}_{which}": c for c in ("score", "predicted_up")})


def _run_errors(
    logged: pd.DataFrame, model_input: pd.DataFrame, run: dict
) -> tuple[int, int, list[str]]:
    """Symbols with complete features but no serving prediction on this run's latest scored
    as-of date, and this run's non-finite scores (``logged``: the rollout's versions' rows)."""
    scored = logged[(logged["scored_by_run"].astype(str) == str(run["id"]))]
    scored = scored[scored["role"] == SERVING]
    if scored.empty:
        return 0, 0, ["this run served no prediction of the rollout's versions"]
    latest = pd.Timestamp(scored["as_of_date"].max())
    scorable = model_input[model_input["has_features"] & (model_input["date"] == latest)]
    served = scored[scored["as_of_date"] == latest]
    missing = sorted(set(scorable["symbol"]) - set(served["symbol"]))
    errors = int((~np.isfinite(scored["score"].astype(float))).sum())
    notes = [f"no prediction on {latest:%Y-%m-%d} for {missing}"] if missing else []
    return len(missing), errors, notes


def _judge_metrics(
    metrics: dict, pvalues: dict, health: dict, sessions: int
) -> tuple[list[str], list[str]]:
    """(breaches, pending): a metric whose drop exceeds its limit breaches when the paired test
    says the candidate is worse (p < ``significance``) or the stage has held it for
    ``max_stage_sessions`` matured dates; before either, it holds the stage (pending)."""
    breaches, pending = [], []
    alpha, patience = float(health["significance"]), int(health["max_stage_sessions"])
    for metric in HEALTH_METRICS:
        limit = health.get(f"max_{metric}_drop")
        ours, theirs = metrics["canary"][metric], metrics["control"][metric]
        if limit is None or not (np.isfinite(ours) and np.isfinite(theirs)):
            continue
        drop = theirs - ours
        if drop <= float(limit):
            continue
        note = (
            f"{metric}_drop: candidate {ours:.4f} vs baseline {theirs:.4f} on the canary "
            f"cohort (drop {drop:.4f} > {float(limit):g}, p={pvalues[metric]:.3f})"
        )
        if pvalues[metric] < alpha:
            breaches.append(note)
        elif sessions >= patience:
            breaches.append(f"{note}, not recovered after {sessions} matured sessions")
        else:
            pending.append(note)
    return breaches, pending


def _release_previous(
    rollouts: pd.DataFrame, registry: RegistryState, rollout: dict, run: dict
) -> tuple[pd.DataFrame, AliasUpdate, dict]:
    """After a completed rollout's retention: let ``previous`` (still on its baseline) go.
    Returns the state, the alias move and the decision's fields (none when nothing moved)."""
    done = rollouts[(rollouts["status"] == COMPLETE) & rollouts["previous_released"].isna()]
    if done.empty:
        return rollouts, AliasUpdate(), {}
    latest = done.iloc[-1].to_dict()
    day = pd.Timestamp(run["date"])
    days = int(rollout["previous_retention_days"])
    if day < pd.Timestamp(latest["ended"]) + pd.Timedelta(days=days):
        return rollouts, AliasUpdate(), {}
    rollouts = _with_row(rollouts, {**latest, "previous_released": f"{day:%Y-%m-%d}"})
    if registry.version_of(PREVIOUS) != int(latest["baseline_version"]):
        return rollouts, AliasUpdate(), {}  # moved since: nothing of the rollout's to release
    note = f"previous v{latest['baseline_version']} released after {days} days"
    fields = {"decision": RELEASE, "rollout_id": latest["rollout_id"], "reasons": [note]}
    return rollouts, AliasUpdate(delete_aliases=[PREVIOUS]), fields


def advance_rollout(
    stored_rollouts: pd.DataFrame,
    shadow_decision: dict,
    predictions: dict[str, Callable[[], pd.DataFrame]],
    labels: pd.DataFrame,
    model_input: pd.DataFrame,
    registry: RegistryState,
    stored_history: pd.DataFrame,
    stored_rollout_history: pd.DataFrame,
    universe: dict,
    rollout: dict,
    horizon: int,
    sessions_per_year: int,
    run: dict,
) -> tuple[pd.DataFrame, pd.DataFrame, AliasUpdate, pd.DataFrame, dict]:
    """The daily rollout step (see the module docstring). Returns the rollout state, the rollout
    history, the alias moves, the promotion history and this run's decision."""
    check_rollout(rollout)
    day = f"{pd.Timestamp(run['date']):%Y-%m-%d}"
    rollouts = _table(stored_rollouts, ROLLOUT_COLUMNS)
    history = stored_history.astype(HISTORY_COLUMNS)
    if rollout.get("enabled") and shadow_decision.get("action") == "promote_after_shadow":
        rollouts = new_rollout(rollouts, shadow_decision, rollout, run, "shadow")
    current = active_rollout(rollouts)
    decision: dict = {"run_date": day, "run_id": str(run["id"]), "decision": NONE}
    if current is None:
        rollouts, update, released = _release_previous(rollouts, registry, rollout, run)
        decision.update(released)
        return _outcome(rollouts, stored_rollout_history, update, history, decision)

    candidate, baseline = int(current["candidate_version"]), int(current["baseline_version"])
    share, stage = float(current["share"]), int(current["stage"])
    decision.update(
        rollout_id=current["rollout_id"],
        candidate_version=candidate,
        baseline_version=baseline,
        stage=stage,
        share=share,
    )
    served_by = (registry.version_of(CHAMPION), registry.version_of(PREVIOUS))
    if served_by != (candidate, baseline):
        reason = (
            f"the registry no longer serves the rollout: champion v{served_by[0]}, "
            f"previous v{served_by[1]} (expected v{candidate}, v{baseline})"
        )
        rollouts = _with_row(
            rollouts, {**current, "status": ABORTED, "ended": day, "reasons": reason}
        )
        decision.update(decision=ABORT, reasons=[reason])
        logger.warning("Rollout %s aborted: %s", current["rollout_id"], reason)
        return _outcome(rollouts, stored_rollout_history, AliasUpdate(), history, decision)

    periods_per_year = sessions_per_year / horizon
    judged = _judge_stage(
        current, predictions, labels, model_input, universe, rollout, periods_per_year, run
    )
    reasons, ready = judged.pop("reasons"), judged.pop("ready")
    decision.update(judged)
    update = AliasUpdate()
    if reasons:
        update, history = _rollback(current, registry, history, reasons, run)
        rollouts = _with_row(
            rollouts, {**current, "status": FAILED, "ended": day, "reasons": "; ".join(reasons)}
        )
        decision.update(decision=ROLLBACK, reasons=reasons)
        logger.warning(
            "Rollout %s rolled back at stage %d: %s", current["rollout_id"], stage, reasons
        )
    elif ready and stage + 1 < len(rollout["stages"]):
        next_share = float(rollout["stages"][stage + 1])
        rollouts = _with_row(
            rollouts, {**current, "stage": stage + 1, "share": next_share, "stage_started": day}
        )
        decision.update(
            decision=ADVANCE, reasons=[f"stage {stage} passed; next share {next_share:g}"]
        )
    elif ready:
        rollouts = _with_row(rollouts, {**current, "status": COMPLETE, "ended": day})
        update = AliasUpdate(version_tags={candidate: {"rollout": COMPLETE}})
        decision.update(decision=COMPLETED, reasons=[f"v{candidate} serves every symbol"])
    else:
        waiting = (
            f"{judged['metrics']['canary']['dates']} of {rollout['min_matured_sessions']} "
            "matured sessions"
        )
        decision.update(decision=HOLD, reasons=[waiting, *judged["pending"]])
    logger.info("Rollout %s: %s", current["rollout_id"], decision["decision"])
    return _outcome(rollouts, stored_rollout_history, update, history, decision)


def _judge_stage(
    current: dict,
    predictions: dict[str, Callable[[], pd.DataFrame]],
    labels: pd.DataFrame,
    model_input: pd.DataFrame,
    universe: dict,
    rollout: dict,
    periods_per_year: float,
    run: dict,
) -> dict:
    """The stage's canary cohort, the candidate's and the baseline's metrics on it (paired: the
    baseline scores the canary cohort in shadow), the control cohort's, errors, whether the
    stage is ready, its breaches (``reasons``) and the drops still waiting for evidence."""
    candidate, baseline = int(current["candidate_version"]), int(current["baseline_version"])
    canary = canary_symbols(
        list(symbol_calendars(universe)), current["rollout_id"], float(current["share"])
    )
    # One read of the log: this run's rows for the errors, the stage's for the metrics.
    logged = _as_dates(_logged_since(predictions, {candidate, baseline}), "as_of_date")
    missing, errors, notes = _run_errors(logged, model_input, run)
    logged = logged[logged["as_of_date"] > pd.Timestamp(current["stage_started"])]
    realised = labels.dropna(subset=["label_up"])[["symbol", "date", "label_up", "forward_return"]]
    matured = logged.merge(
        _as_dates(realised, "date").rename(columns={"date": "as_of_date"}),
        on=["symbol", "as_of_date"],
        how="inner",
    )
    in_canary = matured["symbol"].isin(canary)
    role, version = matured["role"], matured["model_version"]
    served = matured[in_canary & (role == SERVING) & (version == candidate)]
    shadowed = matured[in_canary & (role == SHADOW) & (version == baseline)]
    keys = ["symbol", "as_of_date", "label_up", "forward_return"]
    pairs = served[[*keys, "score", "predicted_up"]].merge(
        shadowed[[*keys, "score", "predicted_up"]], on=keys, suffixes=("_canary", "_base")
    )
    metrics = {
        "canary": cohort_metrics(_side(pairs, "canary"), periods_per_year),
        "control": cohort_metrics(_side(pairs, "base"), periods_per_year),
        "control_cohort": cohort_metrics(
            matured[~in_canary & (role == SERVING) & (version == baseline)], periods_per_year
        ),
    }
    pvalues = paired_pvalues(pairs) if len(pairs) else dict.fromkeys(HEALTH_METRICS, math.nan)
    health = rollout.get("health", {})
    reasons = []
    if missing > int(health.get("max_missing_predictions", 0)):
        reasons.append(f"missing_predictions: {missing}; " + "; ".join(notes))
    if errors > int(health.get("max_scoring_errors", 0)):
        reasons.append(f"scoring_errors: {errors} non-finite scores")
    sessions = metrics["canary"]["dates"]
    breaches, pending = _judge_metrics(metrics, pvalues, health, sessions)
    return {
        "canary_symbols": sorted(canary),
        "metrics": metrics,
        "pvalues": pvalues,
        "missing_predictions": missing,
        "scoring_errors": errors,
        "ready": sessions >= int(rollout["min_matured_sessions"]) and not pending,
        "pending": pending,
        "reasons": reasons + breaches,
    }


def _rollback(
    current: dict, registry: RegistryState, history: pd.DataFrame, reasons: list[str], run: dict
) -> tuple[AliasUpdate, pd.DataFrame]:
    """``champion`` back to the baseline (``previous`` to what it replaced, as a manual
    rollback does), the candidate tagged, a promotion history row."""
    candidate, baseline = int(current["candidate_version"]), int(current["baseline_version"])
    target_previous = previous_after_rollback(history, baseline, candidate)
    update = AliasUpdate(
        set_aliases={
            CHAMPION: baseline,
            **({PREVIOUS: target_previous} if target_previous else {}),
        },
        delete_aliases=[] if target_previous else [PREVIOUS],
        version_tags={candidate: {"rollout": FAILED, "rolled_back_at": str(run["time"])}},
    )
    row = {
        "decided_at": str(run["time"]),
        "run_id": str(run["id"]),
        "model_name": registry.model_name,
        "action": "rollout_rollback",
        "champion_before": candidate,
        "champion_after": baseline,
        "challenger_version": candidate,
        "gate_set": "rollout",
        "summary": "; ".join(reasons),
    }
    return update, append_history(history, row, [])


def _outcome(
    rollouts: pd.DataFrame,
    stored_steps: pd.DataFrame,
    update: AliasUpdate,
    history: pd.DataFrame,
    decision: dict,
) -> tuple[pd.DataFrame, pd.DataFrame, AliasUpdate, pd.DataFrame, dict]:
    """advance_rollout's outputs: the state, the history with this step, the alias moves, the
    promotion history and the decision (JSON-safe)."""
    return rollouts, _append_step(stored_steps, decision), update, history, _json_safe(decision)


def _json_safe(value):
    """NaN (a metric with too little data) as null: the decision is JSON for other tools too."""
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _append_step(stored: pd.DataFrame, decision: dict) -> pd.DataFrame:
    """The rollout history with this run's step (one row per run; a rerun replaces its row)."""
    metrics = decision.get("metrics", {})
    row = {
        "run_date": decision["run_date"],
        "run_id": decision["run_id"],
        "rollout_id": decision.get("rollout_id"),
        "candidate_version": decision.get("candidate_version"),
        "baseline_version": decision.get("baseline_version"),
        "stage": decision.get("stage"),
        "share": decision.get("share", math.nan),
        "canary_symbols": ",".join(decision.get("canary_symbols", [])) or None,
        "missing_predictions": decision.get("missing_predictions"),
        "scoring_errors": decision.get("scoring_errors"),
        "decision": decision["decision"],
        "reasons": "; ".join(decision.get("reasons", [])) or None,
    }
    for cohort in ("canary", "control"):
        values = metrics.get(cohort, {})
        row[f"{cohort}_dates"] = values.get("dates")
        row[f"{cohort}_predictions"] = values.get("predictions")
        for metric in HEALTH_METRICS:
            row[f"{cohort}_{metric}"] = values.get(metric, math.nan)
    stored = _table(stored, ROLLOUT_HISTORY_COLUMNS)
    kept = stored[stored["run_id"] != row["run_id"]]
    new = _table(pd.DataFrame([row]), ROLLOUT_HISTORY_COLUMNS)
    return _table(pd.concat([kept, new], ignore_index=True), ROLLOUT_HISTORY_COLUMNS)


def plot_rollout_history(history: pd.DataFrame) -> Figure:
    """The rollout history as a figure: per rollout, the canary share over the run dates (▲
    advance, ★ complete, ✕ rollback) and, on the canary cohort since its stage began, the
    matured accuracy of the candidate (solid) and of the baseline in shadow (dashed)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 7), layout="constrained")
    figure.suptitle("stock_ml rollout history")
    share_ax, accuracy_ax = figure.subplots(2, 1, sharex=True)
    steps = history.dropna(subset=["rollout_id"]).assign(
        run_date=lambda f: pd.to_datetime(f["run_date"])
    )
    for rollout_id, unsorted in steps.groupby("rollout_id", sort=False):
        part = unsorted.sort_values("run_date")
        (line,) = share_ax.step(
            part["run_date"], 100 * part["share"], where="post", label=rollout_id
        )
        color = line.get_color()
        for side, style, name in (("canary", "-", "candidate"), ("control", "--", "baseline")):
            accuracy_ax.plot(
                part["run_date"],
                part[f"{side}_accuracy"],
                style,
                color=color,
                marker=".",
                label=f"{rollout_id} {name}",
            )
        for decision, marker in (("advance", "^"), ("complete", "*"), ("rollback", "X")):
            moments = part[part["decision"] == decision]
            share_ax.scatter(
                moments["run_date"], 100 * moments["share"], marker=marker, s=90, color=color
            )
    share_ax.set_ylabel("canary share, %")
    share_ax.set_ylim(0, 105)
    accuracy_ax.set_ylabel("accuracy on the canary cohort")
    accuracy_ax.set_ylim(0, 1)
    if steps.empty:
        share_ax.text(0.5, 0.5, "no rollout yet", transform=share_ax.transAxes, ha="center")
    else:
        share_ax.legend(loc="upper left", fontsize="small")
        accuracy_ax.legend(loc="lower left", fontsize="small", ncols=2)
    return figure
