"""Monitoring: judge matured predictions against realised labels and measure feature drift.

Drift maths: PSI in a few lines of numpy with bins fixed from the training reference (deciles),
because that is the whole definition; the Kolmogorov–Smirnov two-sample test from scipy.
Evidently was tried for both and for its HTML report, and left out: version 0.7.23 takes 9.5-10 s
to import on this machine (nltk, its legacy metric suite, plotly's figure factory) in every
monitoring process, installs 16 more packages (a web server and a telemetry client among them) and
pins plotly back from 7 to 5. The HTML report is drawn with plotly (``plots.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from stock_ml.gold_schema import feature_columns
from stock_ml.model_scope import zip_symbols
from stock_ml.models import (
    CHAMPION,
    SERVING,
    RegistryState,
    ServingModel,
    of_model,
    with_roles,
)
from stock_ml.pipelines.training.evaluation import rank_correlation
from stock_ml.runs import run_partition_key

logger = logging.getLogger(__name__)


PERFORMANCE_COLUMNS = [
    "as_of_date",
    "model_name",
    "model_version",
    "role",
    "matured_predictions",
    "correct",
    "mean_score",
    "accuracy",
    "rank_ic",
]


def matured_performance(
    predictions: dict[str, Callable[[], pd.DataFrame]], labels: pd.DataFrame
) -> pd.DataFrame:
    """Per as-of date, model version and role (serving / shadow): how many predictions matured,
    how many were right, and the rank IC of their scores against the realised forward return.

    A prediction matures when its label is realised (the target session's close is known).
    """
    frames = [load() for load in predictions.values()]
    if not frames:
        logger.warning("The prediction log is empty: nothing to judge yet")
        return pd.DataFrame(columns=PERFORMANCE_COLUMNS)
    logged = with_roles(pd.concat(frames, ignore_index=True))
    realised = labels.dropna(subset=["label_up"])[["symbol", "date", "label_up", "forward_return"]]
    matured = logged.merge(
        realised.rename(columns={"date": "as_of_date"}),
        on=["symbol", "as_of_date"],
        how="inner",
        validate="many_to_one",
    )
    matured["correct"] = (matured["predicted_up"] == matured["label_up"]).astype(int)
    keys = ["as_of_date", "model_name", "model_version", "role"]
    performance = matured.groupby(keys, as_index=False).agg(
        matured_predictions=("correct", "size"),
        correct=("correct", "sum"),
        mean_score=("score", "mean"),
    )
    performance["accuracy"] = performance["correct"] / performance["matured_predictions"]
    rank_ic = {
        key: rank_correlation(part["score"], part["forward_return"])
        for key, part in matured.groupby(keys)
    }
    performance["rank_ic"] = [rank_ic[tuple(row)] for row in performance[keys].itertuples(False)]
    logger.info(
        "%d of %d logged predictions matured; pooled accuracy %.4f",
        len(matured),
        len(logged),
        matured["correct"].mean() if len(matured) else float("nan"),
    )
    return performance.sort_values(["as_of_date", "model_version"])[
        PERFORMANCE_COLUMNS
    ].reset_index(drop=True)


def rolling_accuracy(performance: pd.DataFrame, version: int, sessions: int) -> pd.Series:
    """The serving model's accuracy over its last ``sessions`` matured as-of dates, per date."""
    served = performance[
        (performance["model_version"] == version) & (performance["role"] == SERVING)
    ].sort_values("as_of_date")
    correct = served["correct"].rolling(sessions, min_periods=sessions).sum()
    matured = served["matured_predictions"].rolling(sessions, min_periods=sessions).sum()
    return pd.Series((correct / matured).to_numpy(), index=pd.to_datetime(served["as_of_date"]))


def _training_date(registry: RegistryState, version: int) -> pd.Timestamp | None:
    """When a version learnt: its training run's date (data time, so replays and simulations age
    models by the calendar they run on), else its registration time."""
    tagged = registry.version_tags.get(version, {}).get("training_run_date")
    created = registry.version_created.get(version)
    if tagged:
        return pd.Timestamp(tagged)
    return None if created is None else pd.Timestamp(created).tz_localize(None).normalize()


def _stale_symbols(data_health: dict[str, Callable[[], pd.DataFrame]], run: dict) -> list | None:
    """Symbols silver found stale or missing in this run's health record (None: no record)."""
    load = data_health.get(run_partition_key(run))
    if load is None:
        return None
    health = load()
    return sorted(health.loc[health["status"].isin(["stale", "missing"]), "symbol"])


def decide_retraining(
    performance: pd.DataFrame,
    drift: pd.DataFrame,
    registry: RegistryState,
    data_health: dict[str, Callable[[], pd.DataFrame]],
    thresholds: dict,
    run: dict,
) -> dict:
    """``retrain_required`` and every reason, from the thresholds in ``monitoring.decision``.

    Reasons: no champion; the champion's rolling accuracy below ``accuracy_floor`` on each of the
    last ``breach_runs`` as-of dates; more than ``max_drifted_features`` features with PSI above
    ``psi_threshold``; the champion's score distribution with PSI above
    ``prediction_psi_threshold``; a champion trained more than ``max_model_age_days`` ago.

    A model was trained less than ``min_days_between_trainings`` ago → the reasons stand but
    training is not asked for again (``suppressed_by``): a shift newer than a fresh model's
    training window would otherwise queue a training run every day. A missing champion is never
    suppressed. Stale or missing symbols in this run's data health are warnings: retraining does
    not repair a feed.
    """
    reasons, warnings, checks = [], [], {}
    run_date = pd.Timestamp(run["date"])
    champion = registry.version_of(CHAMPION)
    checks["champion_version"] = champion
    if champion is None:
        reasons.append("champion_missing: no version has alias champion")
    else:
        own = of_model(performance, registry.model_name)
        rolling = rolling_accuracy(own, champion, int(thresholds["rolling_sessions"]))
        recent = rolling.dropna().tail(int(thresholds["breach_runs"]))
        checks["rolling_accuracy"] = None if recent.empty else float(recent.iloc[-1])
        floor = float(thresholds["accuracy_floor"])
        if len(recent) == int(thresholds["breach_runs"]) and (recent < floor).all():
            reasons.append(
                f"performance_below_floor: rolling {thresholds['rolling_sessions']}-session "
                f"accuracy {recent.iloc[-1]:.4f} < {floor} on the last {len(recent)} as-of dates"
            )
        trained = _training_date(registry, champion)
        if trained is not None:
            age = (run_date - trained).days
            checks["model_age_days"] = age
            if age > int(thresholds["max_model_age_days"]):
                reasons.append(
                    f"stale_model: champion v{champion} was trained {age} days ago "
                    f"(> {thresholds['max_model_age_days']})"
                )
    features = drift[drift["kind"] == "feature"]
    drifted = features[features["psi"] > float(thresholds["psi_threshold"])]["name"].tolist()
    checks["drifted_features"] = len(drifted)
    if len(drifted) > int(thresholds["max_drifted_features"]):
        reasons.append(
            f"feature_drift: {len(drifted)} features with PSI > {thresholds['psi_threshold']} "
            f"(> {thresholds['max_drifted_features']}): {', '.join(drifted[:10])}"
        )
    scores = drift[drift["kind"] == "prediction"]
    checks["prediction_psi"] = None if scores.empty else float(scores["psi"].iloc[0])
    limit = float(thresholds["prediction_psi_threshold"])
    if not scores.empty and scores["psi"].iloc[0] > limit:
        reasons.append(
            f"prediction_drift: PSI of the champion's scores {scores['psi'].iloc[0]:.4f} > {limit}"
        )
    stale = _stale_symbols(data_health, run)
    checks["stale_symbols"] = stale
    if stale is None:
        warnings.append("no data health record for this run: freshness unknown")
    elif stale:
        warnings.append(f"stale_data: {len(stale)} symbols stale or missing: {', '.join(stale)}")
    required = bool(reasons)
    latest = max(registry.version_tags, default=None)
    trained = None if latest is None else _training_date(registry, latest)
    cooldown = int(thresholds["min_days_between_trainings"])
    if required and champion is not None and trained is not None:
        days = (run_date - trained).days
        if days < cooldown:
            required = False
            checks["suppressed_by"] = (
                f"cooldown: v{latest} was trained {days} days ago (< {cooldown})"
            )
    decision = {
        "model_name": registry.model_name,
        "retrain_required": required,
        "reasons": reasons,
        "warnings": warnings,
        "checks": checks,
        "thresholds": dict(thresholds),
        "run_id": str(run["id"]),
        "run_date": str(run["date"]),
    }
    log = logger.warning if reasons or warnings else logger.info
    log(
        "Retraining %s: %s%s",
        "required" if required else "not required",
        reasons or "all checks pass",
        f" ({checks['suppressed_by']})" if "suppressed_by" in checks else "",
    )
    return decision


def population_stability_index(reference: np.ndarray, current: np.ndarray, bins: int) -> float:
    """PSI of ``current`` against ``reference`` over bins fixed by the reference.

    Inner bins are cut at the reference's deciles (``bins`` quantile bins, right-closed, ties
    merged); two open-ended outer bins hold what lies strictly below the reference minimum or
    above its maximum. So drift outside the reference range counts the same on either side, and a
    constant reference still has bins below, at and above its value. Empty bins get a floor of
    1e-6 so the log stays finite.
    """
    low = np.nextafter(np.min(reference), -np.inf)
    inner = np.quantile(reference, np.linspace(0.0, 1.0, bins + 1)[1:])
    cuts = np.unique(np.r_[low, inner])

    def shares(values: np.ndarray) -> np.ndarray:
        counts = np.bincount(np.searchsorted(cuts, values, side="left"), minlength=len(cuts) + 1)
        return np.clip(counts / len(values), 1e-6, None)

    expected, actual = shares(reference), shares(current)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


DRIFT_COLUMNS = [
    "run_date",
    "model_name",
    "model_version",
    "kind",
    "name",
    "psi",
    "ks_statistic",
    "ks_pvalue",
    "reference_rows",
    "current_rows",
    "current_from",
    "current_to",
]


def _distribution_drift(reference: np.ndarray, current: np.ndarray, bins: int) -> dict:
    """PSI (binned, fixed by the reference) and the two-sample Kolmogorov–Smirnov test, whose
    p-value says whether a difference this large is plausible by chance at these sample sizes."""
    test = ks_2samp(reference, current)
    return {
        "psi": population_stability_index(reference, current, bins),
        "ks_statistic": float(test.statistic),
        "ks_pvalue": float(test.pvalue),
        "reference_rows": len(reference),
        "current_rows": len(current),
    }


def recent_sessions(model_input: pd.DataFrame, window_sessions: int) -> pd.DataFrame:
    """Rows with complete features in the last ``window_sessions`` sessions that have them."""
    scorable = model_input[model_input["has_features"]]
    dates = np.sort(scorable["date"].unique())[-window_sessions:]
    return scorable[scorable["date"].isin(dates)]


def champion_reference(model_input: pd.DataFrame, champion: ServingModel) -> pd.DataFrame:
    """The champion's own training rows: gold rows in its ``train_start``..``train_end`` tags.

    Rebuilt from gold rather than stored by training, so the reference is always the serving
    model's, not that of the latest challenger (which may have been rejected).
    """
    start, end = champion.tags.get("train_start"), champion.tags.get("train_end")
    if not start or not end:
        raise ValueError(
            f"{champion.name} v{champion.version} has no train_start/train_end tags: "
            "its training reference cannot be rebuilt"
        )
    tagged_hash = champion.tags.get("feature_schema_hash")
    built_hash = sorted(model_input["feature_schema_hash"].dropna().unique())
    if tagged_hash and built_hash != [tagged_hash]:
        logger.warning(
            "Champion v%d learnt features of schema %s, gold is %s: drift compares different "
            "definitions",
            champion.version,
            tagged_hash,
            built_hash,
        )
    in_window = model_input["date"].between(pd.Timestamp(start), pd.Timestamp(end))
    return model_input[model_input["is_trainable"] & in_window]


def feature_drift(
    reference: pd.DataFrame, model_input: pd.DataFrame, window_sessions: int, bins: int
) -> pd.DataFrame:
    """PSI and KS per feature: the last ``window_sessions`` sessions vs the reference rows."""
    current = recent_sessions(model_input, window_sessions)
    rows = []
    for feature in feature_columns(reference):
        ref, cur = reference[feature].dropna().to_numpy(), current[feature].dropna().to_numpy()
        rows.append({"kind": "feature", "name": feature, **_distribution_drift(ref, cur, bins)})
    drift = pd.DataFrame(rows).sort_values("psi", ascending=False, ignore_index=True)
    drift["current_from"], drift["current_to"] = current["date"].min(), current["date"].max()
    logger.info("Largest feature drift: %s", drift.head(3)[["name", "psi"]].to_dict("records"))
    return drift


def prediction_drift(
    champion: ServingModel,
    reference: pd.DataFrame,
    model_input: pd.DataFrame,
    window_sessions: int,
    bins: int,
) -> pd.DataFrame:
    """The champion's score distribution on recent sessions vs on its own training rows: a model
    whose inputs drift in ways that do not matter keeps its scores; one whose do, does not."""
    current = recent_sessions(model_input, window_sessions)
    columns = list(champion.model.feature_names_in_)

    def scores(rows: pd.DataFrame) -> np.ndarray:
        return champion.model.predict_proba(rows[columns])[:, 1]

    row = {"kind": "prediction", "name": "score"}
    row |= _distribution_drift(scores(reference), scores(current), bins)
    row |= {"current_from": current["date"].min(), "current_to": current["date"].max()}
    logger.info("Prediction drift of v%d: PSI %.4f", champion.version, row["psi"])
    return pd.DataFrame([row])


def drift_report(
    model_input: pd.DataFrame,
    champion: ServingModel | None,
    window_sessions: int,
    bins: int,
    run: dict,
    symbol: str | None = None,
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Feature and prediction drift of the serving model, as this run's table and as this run's
    partition of the drift history (keyed by run date: rerunning a day replaces its rows).

    No champion → an empty table: there is no reference to drift from, and the verdict already
    asks for training. With ``symbol`` (one symbol's own model, model_scope per_symbol): that
    symbol's rows, for the reference and the recent window alike.
    """
    if champion is None:
        logger.warning("No champion: no training reference, no drift measured")
        return pd.DataFrame(columns=DRIFT_COLUMNS), {}
    if symbol is not None:
        model_input = model_input[model_input["symbol"] == symbol]
    reference = champion_reference(model_input, champion)
    drift = pd.concat(
        [
            feature_drift(reference, model_input, window_sessions, bins),
            prediction_drift(champion, reference, model_input, window_sessions, bins),
        ],
        ignore_index=True,
    )
    drift["run_date"] = pd.Timestamp(run["date"])
    drift["model_name"] = champion.name
    drift["model_version"] = champion.version
    return _with_history_partition(drift[DRIFT_COLUMNS], run)


def _with_history_partition(
    drift: pd.DataFrame, run: dict
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """The run's drift table, and the same rows as its drift history partition (by run date)."""
    return drift, {f"run_date={pd.Timestamp(run['date']):%Y-%m-%d}": drift}


def collect_drift(
    run: dict, *by_symbol: pd.DataFrame
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """The per-symbol models' drift tables as one run's table and drift history partition."""
    tables = [table for table in by_symbol if not table.empty]
    if not tables:
        return pd.DataFrame(columns=DRIFT_COLUMNS), {}
    return _with_history_partition(pd.concat(tables, ignore_index=True)[DRIFT_COLUMNS], run)


def collect_retrain_decisions(*by_symbol: dict, symbols: tuple[str, ...]) -> dict:
    """The per-symbol verdicts as the daily run's one verdict: ``retrain_required`` when any
    symbol's model needs training, ``retrain_symbols`` naming them (the daily DAG triggers each
    one's training DAG), every symbol's reasons prefixed with it, and each verdict whole."""
    verdicts = zip_symbols(by_symbol, symbols, "verdicts")
    retrain = [symbol for symbol, verdict in verdicts.items() if verdict["retrain_required"]]
    warnings = list(dict.fromkeys(w for v in verdicts.values() for w in v["warnings"]))
    first = by_symbol[0] if by_symbol else {}
    decision = {
        "retrain_required": bool(retrain),
        "retrain_symbols": retrain,
        "reasons": [f"{s}: {r}" for s, v in verdicts.items() for r in v["reasons"]],
        "warnings": warnings,
        "by_symbol": verdicts,
        "run_id": first.get("run_id"),
        "run_date": first.get("run_date"),
    }
    logger.log(
        logging.WARNING if retrain else logging.INFO,
        "Retraining required for %d of %d symbols: %s",
        len(retrain),
        len(symbols),
        retrain,
    )
    return decision


def plot_monitoring_history(
    performance: pd.DataFrame,
    drift_history: dict[str, Callable[[], pd.DataFrame]],
    decision: dict,
    plots: dict,
) -> tuple[Any, Any]:
    """The monitoring history as a PNG figure and an interactive HTML page: matured accuracy and
    rank IC per as-of date and model version, feature and prediction PSI per run date, with the
    verdict's thresholds drawn."""
    # plotly is imported on use: pipeline registration (every kedro command) should not pay it.
    from stock_ml.pipelines.monitoring.plots import history_figure, history_html

    frames = [load() for load in drift_history.values()]
    drift = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=DRIFT_COLUMNS)
    thresholds = {
        "accuracy_floor": float(decision["accuracy_floor"]),
        "rolling_sessions": int(decision["rolling_sessions"]),
        "psi_threshold": float(decision["psi_threshold"]),
        "top_features": int(plots["top_features"]),
    }
    return (
        history_figure(performance, drift, thresholds),
        history_html(performance, drift, thresholds),
    )
