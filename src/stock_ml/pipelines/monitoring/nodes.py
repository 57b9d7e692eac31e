"""Monitoring: judge matured predictions against realised labels and measure feature drift.

PSI is computed here in a few lines of numpy with bins fixed from the training reference
(deciles), because that is the whole definition; issue #6 brings a maintained drift library and
its report on top. The KS statistic comes from scipy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from scipy.stats import ks_2samp

from stock_ml.gold_schema import feature_columns
from stock_ml.models import CHAMPION, SERVING, RegistryState, with_roles
from stock_ml.pipelines.training.evaluation import rank_correlation

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


def decide_retraining(
    performance: pd.DataFrame,
    drift: pd.DataFrame,
    registry: RegistryState,
    thresholds: dict,
    run: dict,
) -> dict:
    """``retrain_required`` and every reason, from the thresholds in ``monitoring.decision``.

    Reasons: no champion; the champion's rolling accuracy below ``accuracy_floor`` on each of the
    last ``breach_runs`` as-of dates; more than ``max_drifted_features`` features with PSI above
    ``psi_threshold``; a champion older than ``max_model_age_days`` (from its registration).
    """
    reasons, checks = [], {}
    champion = registry.version_of(CHAMPION)
    checks["champion_version"] = champion
    if champion is None:
        reasons.append("champion_missing: no version has alias champion")
    else:
        rolling = rolling_accuracy(performance, champion, int(thresholds["rolling_sessions"]))
        recent = rolling.dropna().tail(int(thresholds["breach_runs"]))
        checks["rolling_accuracy"] = None if recent.empty else float(recent.iloc[-1])
        floor = float(thresholds["accuracy_floor"])
        if len(recent) == int(thresholds["breach_runs"]) and (recent < floor).all():
            reasons.append(
                f"performance_below_floor: rolling {thresholds['rolling_sessions']}-session "
                f"accuracy {recent.iloc[-1]:.4f} < {floor} on the last {len(recent)} as-of dates"
            )
        created = registry.version_created.get(champion)
        if created is not None:
            age = (pd.Timestamp(run["date"]) - pd.Timestamp(created).tz_localize(None)).days
            checks["model_age_days"] = age
            if age > int(thresholds["max_model_age_days"]):
                reasons.append(
                    f"stale_model: champion v{champion} is {age} days old "
                    f"(> {thresholds['max_model_age_days']})"
                )
    drifted = drift[drift["psi"] > float(thresholds["psi_threshold"])]["feature"].tolist()
    checks["drifted_features"] = len(drifted)
    if len(drifted) > int(thresholds["max_drifted_features"]):
        reasons.append(
            f"feature_drift: {len(drifted)} features with PSI > {thresholds['psi_threshold']} "
            f"(> {thresholds['max_drifted_features']}): {', '.join(drifted[:10])}"
        )
    decision = {
        "retrain_required": bool(reasons),
        "reasons": reasons,
        "checks": checks,
        "thresholds": dict(thresholds),
        "run_id": str(run["id"]),
        "run_date": str(run["date"]),
    }
    log = logger.warning if reasons else logger.info
    log(
        "Retraining %s: %s", "required" if reasons else "not required", reasons or "all checks pass"
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


def feature_drift(
    reference: pd.DataFrame, model_input: pd.DataFrame, window_sessions: int, bins: int
) -> pd.DataFrame:
    """PSI and KS statistic per feature: last ``window_sessions`` sessions vs the training data."""
    current = model_input[model_input["has_features"]]
    recent_dates = np.sort(current["date"].unique())[-window_sessions:]
    current = current[current["date"].isin(recent_dates)]
    rows = []
    for feature in feature_columns(reference.drop(columns=["symbol", "date"])):
        ref, cur = reference[feature].dropna().to_numpy(), current[feature].dropna().to_numpy()
        rows.append(
            {
                "feature": feature,
                "psi": population_stability_index(ref, cur, bins),
                "ks_statistic": float(ks_2samp(ref, cur).statistic),
                "reference_rows": len(ref),
                "current_rows": len(cur),
                "current_from": recent_dates[0],
                "current_to": recent_dates[-1],
            }
        )
    drift = pd.DataFrame(rows).sort_values("psi", ascending=False, ignore_index=True)
    logger.info("Largest feature drift: %s", drift.head(3)[["feature", "psi"]].to_dict("records"))
    return drift


def plot_monitoring(performance: pd.DataFrame, drift: pd.DataFrame, psi_alert: float) -> Figure:
    """Matured accuracy per as-of date and model version; PSI per feature with its alert line."""
    # A bare Figure, not pyplot: no global backend switch, nothing left open in a long-lived worker.
    figure = Figure(figsize=(11, 8), layout="constrained")
    top, bottom = figure.subplots(2, 1)
    for (version, role), part in performance.groupby(["model_version", "role"]):
        # The table may come back from CSV with text dates: plot on a real time axis.
        when = pd.to_datetime(part["as_of_date"])
        top.plot(when, part["accuracy"], marker=".", label=f"model v{version} ({role})")
    top.axhline(0.5, color="grey", linestyle="--", linewidth=1, label="coin flip")
    top.set_title("Accuracy of matured predictions by as-of date")
    top.set_ylabel("accuracy")
    top.set_ylim(0, 1)
    top.legend(loc="lower left")
    top.xaxis.set_major_locator(AutoDateLocator())
    top.xaxis.set_major_formatter(ConciseDateFormatter(top.xaxis.get_major_locator()))
    bottom.bar(drift["feature"], drift["psi"], color="tab:blue")
    bottom.axhline(psi_alert, color="tab:red", linestyle="--", label=f"alert PSI {psi_alert}")
    bottom.set_title("Feature drift: PSI of recent sessions vs training reference")
    bottom.set_ylabel("PSI")
    bottom.tick_params(axis="x", rotation=60)
    bottom.legend()
    return figure
