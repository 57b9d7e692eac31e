"""Inference: score the latest sessions with the champion, and the challenger in shadow.

Scores the last ``score_sessions`` sessions (the unlabeled tail is tomorrow's forecast; earlier
sessions replay what the model would have said then and mature into monitoring's accuracy). Each
prediction names the model version that made it and its role: ``serving`` (the champion, what
the API publishes) or ``shadow`` (the challenger, logged beside it so monitoring can compare the
two on the same sessions before anyone promotes it).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from stock_ml.models import SERVING, SHADOW, ServingModel, with_roles
from stock_ml.rollout import active_rollout, canary_symbols
from stock_ml.universe import scope_symbols, symbol_calendars

logger = logging.getLogger(__name__)


def _predict(
    serving: ServingModel, rows: pd.DataFrame, horizon: int, threshold: float, role: str, run: dict
) -> pd.DataFrame:
    scores = serving.model.predict_proba(rows[list(serving.model.feature_names_in_)])[:, 1]
    return pd.DataFrame(
        {
            "target_prediction_date": rows["target_date"].fillna(
                rows["date"] + pd.offsets.BDay(horizon)
            ),
            "symbol": rows["symbol"],
            "as_of_date": rows["date"],
            "score": scores,
            "predicted_up": (scores >= threshold).astype(int),
            "model_name": serving.name,
            "model_alias": serving.alias,
            "model_version": serving.version,
            "mlflow_run_id": serving.run_id,
            "role": role,
            "scored_by_run": str(run["id"]),
            "scored_at": pd.Timestamp(run["time"]),
        }
    )


def score_latest_sessions(
    serving: ServingModel | None,
    model_input: pd.DataFrame,
    score_sessions: int,
    horizon: int,
    threshold: float,
    shadow: ServingModel | None,
    run: dict,
    universe: dict | None = None,
    rollouts: pd.DataFrame | None = None,
    baseline: ServingModel | None = None,
    symbol: str | None = None,
) -> dict[str, pd.DataFrame]:
    """Predictions keyed by (target_prediction_date, symbol, model_version), one partition per
    as-of date and model version (``as_of_date=D/model_version=N``); rescoring a date with a
    version rewrites that partition only, so a rerun leaves one row per key and a new champion's
    replay of recent dates does not erase what the previous one predicted for them.

    ``target_prediction_date`` is the realised label date where known, else the as-of date plus
    ``horizon`` business days. No champion → nothing is scored (monitoring reports it); a
    challenger that is the champion, or cannot read this gold build's features, is not shadowed.

    A run narrowed to a scope (``run.symbols`` / ``run.exchange_groups`` of ``universe``) scores
    only its scope's symbols; the prediction log keeps every other symbol's rows of the same
    partitions (it replaces rows by symbol, see conf/base/catalog.yml).

    During a staged rollout (``rollouts``, stock_ml.rollout) the champion serves the stage's
    canary cohort and ``baseline`` (the ``previous`` alias, the version the champion replaced)
    the other symbols; each row names the version and alias that served it.

    With ``symbol`` (one symbol's own model, model_scope per_symbol): that symbol's rows only,
    and nothing (a warning) when the run's scope leaves the symbol out or it has no complete
    feature vector.
    """
    if score_sessions < 1:
        raise ValueError(f"inference.score_sessions must be ≥ 1, got {score_sessions}")
    if serving is None:
        logger.warning("No champion to serve: nothing scored (monitoring will ask for training)")
        return {}
    scorable = model_input[model_input["has_features"]]
    scope = scope_symbols(universe, run) if universe is not None else None
    if symbol is not None:
        if scope is not None and symbol not in scope:
            logger.info("%s is not in this run's scope: not scored", symbol)
            return {}
        scorable = scorable[scorable["symbol"] == symbol]
        if scorable.empty:  # one symbol's gap must not stop the other symbols' scoring
            logger.warning("%s has no complete feature vector: not scored", symbol)
            return {}
        scope = None
    if scope is not None:
        scorable = scorable[scorable["symbol"].isin(scope)]
        unscored = sorted(scope - set(scorable["symbol"]))
        logger.info("Run scope: scoring %d symbols %s", len(scope), sorted(scope))
        if unscored:
            logger.warning("In this run's scope but no complete feature vector: %s", unscored)
    dates = np.sort(scorable["date"].unique())[-score_sessions:]
    rows = scorable[scorable["date"].isin(dates)]
    if rows.empty:
        where = f" for this run's scope {sorted(scope)}" if scope is not None else ""
        raise ValueError(f"No session has a complete feature vector to score{where}")
    frames = [
        _predict(model, part, horizon, threshold, role, run)
        for model, part, role in _serving_cohorts(serving, baseline, rows, rollouts, universe)
    ]
    if shadow is not None and shadow.version != serving.version:
        missing = sorted(set(shadow.model.feature_names_in_) - set(rows.columns))
        if missing:
            logger.warning(
                "Challenger v%d lacks features %s: not shadowed", shadow.version, missing[:5]
            )
        else:
            frames.append(_predict(shadow, rows, horizon, threshold, SHADOW, run))
    predictions = pd.concat(frames, ignore_index=True)
    logger.info(
        "Scored %d rows over %d sessions: %s",
        len(predictions),
        len(dates),
        ", ".join(
            f"{f['model_name'].iloc[0]} v{f['model_version'].iloc[0]} ({f['role'].iloc[0]})"
            for f in frames
        ),  # fmt: skip
    )
    return {
        f"as_of_date={day:%Y-%m-%d}/model_version={version}": part.reset_index(drop=True)
        for (day, version), part in predictions.groupby(["as_of_date", "model_version"])
    }


def _serving_cohorts(
    serving: ServingModel,
    baseline: ServingModel | None,
    rows: pd.DataFrame,
    rollouts: pd.DataFrame | None,
    universe: dict | None,
) -> list[tuple[ServingModel, pd.DataFrame, str]]:
    """Which model scores which rows in which role: the champion serves all of them, or, during
    a rollout whose versions the registry still holds, the champion serves the canary cohort and
    the baseline the rest, and the baseline also scores the canary cohort in shadow (the rollout
    step compares the two models on the same symbols and sessions)."""
    rollout = active_rollout(rollouts)
    if rollout is None:
        return [(serving, rows, SERVING)]
    versions = (int(rollout["candidate_version"]), int(rollout["baseline_version"]))
    if baseline is None or (serving.version, baseline.version) != versions:
        logger.warning(
            "Rollout %s is of v%d over v%d but the registry serves champion v%s, previous v%s: "
            "the champion serves every symbol (the rollout step will abort it)",
            rollout["rollout_id"],
            *versions,
            serving.version,
            None if baseline is None else baseline.version,
        )
        return [(serving, rows, SERVING)]
    universe_symbols = symbol_calendars(universe) if universe is not None else rows["symbol"]
    canary = canary_symbols(universe_symbols, rollout["rollout_id"], float(rollout["share"]))
    in_canary = rows["symbol"].isin(canary)
    logger.info(
        "Rollout %s stage %s (%.0f%%): v%d serves %s, v%d the other %d symbols",
        rollout["rollout_id"],
        rollout["stage"],
        100 * float(rollout["share"]),
        serving.version,
        sorted(canary),
        baseline.version,
        rows.loc[~in_canary, "symbol"].nunique(),
    )
    parts = [
        (serving, rows[in_canary], SERVING),
        (baseline, rows[~in_canary], SERVING),
        (baseline, rows[in_canary], SHADOW),
    ]
    return [(model, part, role) for model, part, role in parts if not part.empty]


def _payload(frame: pd.DataFrame) -> dict:
    """``frame``: one row per symbol, in scoring order (the last row is the latest scoring)."""
    last = frame.iloc[-1]
    return {
        "as_of_date": f"{last['as_of_date']:%Y-%m-%d}",
        "model_name": last["model_name"],
        "model_version": int(last["model_version"]),
        "mlflow_run_id": last["mlflow_run_id"],
        "predictions": [
            {
                "symbol": row.symbol,
                "target_prediction_date": f"{row.target_prediction_date:%Y-%m-%d}",
                "score": round(float(row.score), 6),
                "predicted_up": bool(row.predicted_up),
                "model_name": row.model_name,
                "model_version": int(row.model_version),
            }
            for row in frame.sort_values("symbol").itertuples()
        ],
    }


def collect_predictions(*by_symbol: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The per-symbol models' predictions as one run's prediction log partitions: symbols whose
    models share a version number share the partition ``as_of_date=D/model_version=N``."""
    parts: dict[str, list[pd.DataFrame]] = {}
    for predictions in by_symbol:
        for key, frame in predictions.items():
            parts.setdefault(key, []).append(frame)
    return {key: pd.concat(frames, ignore_index=True) for key, frames in sorted(parts.items())}


def export_for_api(predictions: dict) -> tuple[dict, dict[str, dict]]:
    """What an API serves: the champion's predictions of the latest as-of date, as latest.json
    and as historical/<date>.json. Only that date is written: each historical file is what was
    published on its day, never rewritten by a later champion's replay. Shadow predictions are
    never published.

    Each symbol gets its latest serving prediction of that date (latest ``scored_at``, then the
    higher model version): a day rescored after a promotion publishes the new champion's, and a
    run narrowed to some symbols updates theirs while the others keep theirs. The top-level model
    fields are those of the latest scoring; each prediction names its own ``model_version``."""
    if not predictions:
        return {"as_of_date": None, "predictions": []}, {}
    latest_day = max(key.split("/")[0] for key in predictions)
    frames = [load() for key, load in predictions.items() if key.split("/")[0] == latest_day]
    logged = with_roles(pd.concat(frames, ignore_index=True))
    served = logged[logged["role"] == SERVING]
    if served.empty:
        return {"as_of_date": None, "predictions": []}, {}
    order = ["scored_at", "model_version"] if "scored_at" in served else ["model_version"]
    served = served.sort_values(order, na_position="first", kind="stable")
    latest = _payload(served.drop_duplicates("symbol", keep="last"))
    return latest, {latest["as_of_date"]: latest}
