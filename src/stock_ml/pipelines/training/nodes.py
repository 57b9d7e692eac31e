"""Training: purged time split, seeded model search, holdout evaluation against baselines.

The split is by date, never shuffled: the holdout is the last ``holdout_sessions`` dates; train
rows in the ``embargo_sessions`` before it, and any whose label window reaches into it, never
train. The search cross-validates walk-forward inside the training period (``cv.py``); the chosen
configuration is refit on the whole training period and judged once on the holdout, beside the
current champion and two naive baselines scored the same way (``evaluation.py``).
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from stock_ml.gold_schema import feature_columns
from stock_ml.models import CHAMPION, ModelCandidate, ServingModel
from stock_ml.pipelines.training import evaluation
from stock_ml.pipelines.training.cv import check_embargo, purged_train_rows, walk_forward_folds
from stock_ml.pipelines.training.search import build_estimator, resolve_profile, run_search

logger = logging.getLogger(__name__)

# Scorers of the holdout report; the champion's row is named after its alias (gates say `than`).
MODEL = "model"
ALWAYS_UP = "always_up"
MOMENTUM = "momentum"


def select_symbol(model_input: pd.DataFrame, symbol: str) -> pd.DataFrame:
    """One symbol's rows of the gold model input: a per-symbol model's training data.

    The features were built over the whole universe (cross-sectional ranks included), so a
    one-symbol model sees the same feature values a pooled model would."""
    rows = model_input[model_input["symbol"] == symbol].reset_index(drop=True)
    if rows.empty:
        raise ValueError(f"model_scope per_symbol: the gold model input has no rows of {symbol}")
    return rows


def split_by_date(
    model_input: pd.DataFrame, split: dict, horizon: int
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Return (train, holdout, window) from trainable rows; no train label sees the holdout."""
    holdout_sessions = int(split["holdout_sessions"])
    embargo = int(split["embargo_sessions"])
    check_embargo(embargo, horizon)
    if holdout_sessions < 1:
        raise ValueError(f"training.split.holdout_sessions must be ≥ 1, got {holdout_sessions}")
    trainable = model_input[model_input["is_trainable"]]
    dates = np.sort(trainable["date"].unique())
    if len(dates) <= holdout_sessions + embargo:
        raise ValueError(
            f"{len(dates)} trainable sessions cannot hold a {holdout_sessions}-session holdout, "
            f"a {embargo}-session embargo and a training period: lower "
            "training.split.holdout_sessions or ingest more history"
        )
    holdout_start = dates[-holdout_sessions]
    holdout = trainable[trainable["date"] >= holdout_start]
    positions, purged = purged_train_rows(
        trainable["date"],
        trainable["target_date"],
        dates[: -holdout_sessions - embargo],
        holdout_start,
    )
    train = trainable.iloc[positions]
    if train.empty:
        raise ValueError(
            f"No training rows left: the {holdout_sessions}-session holdout starts "
            f"{pd.Timestamp(holdout_start).date()} and every earlier row's label reaches into it "
            f"({purged} rows purged); lower training.split.holdout_sessions or ingest more history"
        )
    window = {
        "train_start": str(train["date"].min().date()),
        "train_end": str(train["date"].max().date()),
        "holdout_start": str(holdout["date"].min().date()),
        "holdout_end": str(holdout["date"].max().date()),
        "train_rows": len(train),
        "holdout_rows": len(holdout),
        "embargo_sessions": embargo,
        "purged_rows": purged,
    }
    logger.info("Training window: %s", window)
    return train.reset_index(drop=True), holdout.reset_index(drop=True), window


def search_model(
    train: pd.DataFrame, search: dict, split: dict, horizon: int, seed: int
) -> tuple[pd.DataFrame, dict]:
    """Seeded search over the profile's families and spaces, walk-forward CV inside train."""
    profile = resolve_profile(search)
    folds = walk_forward_folds(
        train, int(profile["cv_folds"]), int(split["embargo_sessions"]), horizon
    )
    for fold in folds:
        logger.info(
            "CV fold %d: train ..%s (%d rows, %d purged) | validate %s..%s (%d rows)",
            fold.number,
            fold.train_end.date(),
            len(fold.train),
            fold.purged_rows,
            fold.validation_start.date(),
            fold.validation_end.date(),
            len(fold.validation),
        )
    return run_search(train, feature_columns(train), folds, search, seed)


def fit_model(train: pd.DataFrame, best: dict, search: dict, seed: int) -> Pipeline:
    """Refit the chosen family and hyperparameters on the whole training period."""
    estimator = build_estimator(search["families"][best["family"]], best["params"], seed)
    estimator.fit(train[feature_columns(train)], train["label_up"].astype(int))
    return estimator


def score_holdout(
    estimator: Pipeline,
    champion: ServingModel | None,
    holdout: pd.DataFrame,
    train: pd.DataFrame,
    prices: pd.DataFrame,
    settings: dict,
) -> pd.DataFrame:
    """Every scorer's score for each holdout row: the model, the champion, the baselines.

    * ``always_up``: the training period's up share, for every row (a prior, not a ranking);
    * ``momentum``: the past ``momentum_sessions``-session return, known at t;
    * ``champion``: the current champion's probability, when it can read this gold build's
      features (a column of NaN otherwise, and the decision says why).
    """
    scores = holdout[["date", "symbol", "target_date", "forward_return", "label_up"]].copy()
    scores[f"score_{MODEL}"] = estimator.predict_proba(holdout[list(estimator.feature_names_in_)])[
        :, 1
    ]
    scores[f"score_{CHAMPION}"] = math.nan
    if champion is not None:
        needed = list(champion.model.feature_names_in_)
        missing = sorted(set(needed) - set(holdout.columns))
        if missing:
            logger.warning(
                "Champion v%d reads features this gold build lacks (%s …): not comparable",
                champion.version,
                missing[:5],
            )
        else:
            scores[f"score_{CHAMPION}"] = champion.model.predict_proba(holdout[needed])[:, 1]
    scores[f"score_{ALWAYS_UP}"] = float(train["label_up"].mean())
    past = evaluation.momentum(prices, int(settings["momentum_sessions"]))
    scores = scores.merge(
        past.rename(columns={"score": f"score_{MOMENTUM}"}),
        on=["symbol", "date"],
        how="left",
        validate="one_to_one",
    )
    return scores


def evaluate_holdout(
    scores: pd.DataFrame,
    prices: pd.DataFrame,
    settings: dict,
    horizon: int,
    threshold: float,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    """The holdout table (one row per scorer), per-date IC, daily equity, and MLflow metrics."""
    returns = evaluation.daily_returns(prices)
    label = scores["label_up"].astype(int).to_numpy()
    rows, ic_tables, equity_tables = [], [], []
    for scorer in [MODEL, CHAMPION, ALWAYS_UP, MOMENTUM]:
        column = f"score_{scorer}"
        if scores[column].isna().all():
            continue
        frame = scores[["date", "symbol", "forward_return"]].assign(score=scores[column])
        score = frame["score"].to_numpy(dtype=float)
        probabilistic = scorer != MOMENTUM
        usable = ~np.isnan(score)
        if scorer == ALWAYS_UP:  # predicts up whatever its probability (the prior) says
            predicted = np.ones_like(score, dtype=bool)
        else:
            predicted = (score >= threshold) if probabilistic else (score > 0)
        row = {"scorer": scorer}
        row.update(
            evaluation.classification_metrics(
                label[usable], predicted[usable].astype(int), score[usable], probabilistic
            )
        )
        ic = evaluation.daily_ic(frame, "score")
        row.update(evaluation.ic_summary(ic, horizon))
        days, trades = evaluation.backtest_top_k(
            frame[["date", "symbol", "score"]],
            returns,
            None if scorer == ALWAYS_UP else int(settings["top_k"]),
            int(settings["rebalance_every"]),
            float(settings["cost_bp"]),
        )
        row.update(evaluation.backtest_summary(days, trades, int(settings["sessions_per_year"])))
        rows.append(row)
        ic_tables.append(ic.assign(scorer=scorer))
        equity_tables.append(days.assign(scorer=scorer))
    report = pd.DataFrame.from_records(rows)
    logger.info(
        "Holdout (model vs baselines):\n%s",
        report.set_index("scorer")[evaluation.HEADLINE_METRICS].round(4).to_string(),
    )
    metrics = {
        f"{row['scorer']}.{name}": {"value": float(value), "step": 0}
        for row in rows
        for name, value in row.items()
        if name != "scorer" and isinstance(value, float) and math.isfinite(value)
    }
    return report, pd.concat(ic_tables), pd.concat(equity_tables), metrics


def package_challenger(
    estimator: Pipeline, train: pd.DataFrame, best: dict, lineage: dict, window: dict, run: dict
) -> ModelCandidate:
    """The fitted model with an input example and the tags that trace it to data and search."""
    features = list(estimator.feature_names_in_)
    tags = {
        "family": best["family"],
        "search_profile": best["profile"],
        "objective": best["objective"],
        "cv_score": f"{best['cv_score']:.6f}",
        "dataset_run_id": lineage["dataset_run_id"],
        "feature_schema_hash": lineage["feature_schema_hash"],
        "label_run_id": lineage["label_run_id"],
        **{key: str(window[key]) for key in ["train_start", "train_end", "holdout_start"]},
        "holdout_end": window["holdout_end"],
        "code_version": str(run["code_version"]),
        "training_run_id": str(run["id"]),
        "training_run_date": str(run["date"]),
    }
    return ModelCandidate(
        model=estimator,
        input_example=train[features].head(5).reset_index(drop=True),
        tags=tags,
        description=(
            f"{best['family']} from search profile '{best['profile']}' "
            f"(trial {best['trial']} of {best['n_trials']}); trained {window['train_start']}.."
            f"{window['train_end']}, held out {window['holdout_start']}..{window['holdout_end']}"
        ),
    )


def run_params(lineage: dict, window: dict, best: dict) -> dict:
    """Params of the training run that no ``params:`` input carries: data, window, choice."""
    return {
        "data": {
            "dataset_run_id": lineage["dataset_run_id"],
            "feature_schema_hash": lineage["feature_schema_hash"],
            "label_run_id": lineage["label_run_id"],
            "features": len(lineage["features"]),
        },
        "window": window,
        "search": {
            "profile": best["profile"],
            "family": best["family"],
            "trial": best["trial"],
            "n_trials": best["n_trials"],
            "search_seconds": round(best["search_seconds"], 2),
            **{f"best.{key}": value for key, value in best["params"].items()},
        },
    }


def search_trials_table(trials: pd.DataFrame) -> pd.DataFrame:
    """Search trials as the nested-runs dataset logs them (one child run per trial)."""
    return trials.assign(trial=trials["trial"].map(lambda n: f"{n:03d}"))


def data_lineage(model_input: pd.DataFrame) -> dict:
    """Which gold build the model learnt from: its dataset run ids and feature schema hash.

    Logged as an artifact of the training run (``training_data_lineage``), so a registered
    version can always be traced back to the gold tables and feature definitions behind it.
    """
    lineage = {}
    for column in ["dataset_run_id", "feature_schema_hash", "label_run_id"]:
        values = sorted(model_input[column].dropna().unique().tolist())
        if len(values) != 1:
            raise ValueError(f"gold model input mixes builds: {column} = {values}")
        lineage[column] = values[0]
    lineage["rows"] = len(model_input)
    lineage["features"] = feature_columns(model_input)
    return lineage
