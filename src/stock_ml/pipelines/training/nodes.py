"""Training: time-ordered split with a purge gap, one scikit-learn model, holdout metrics.

The split is by date, never shuffled: the holdout is the last ``holdout_sessions`` dates, and train
rows whose label window reaches into the holdout are purged (their forward return is realised on
holdout dates). Issue #5 replaces this with walk-forward CV and a search.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from stock_ml.gold_schema import feature_columns

logger = logging.getLogger(__name__)


def split_by_date(
    model_input: pd.DataFrame, holdout_sessions: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (train, holdout) from trainable rows; every train label is realised before holdout."""
    if holdout_sessions < 1:
        raise ValueError(f"training.holdout_sessions must be ≥ 1, got {holdout_sessions}")
    trainable = model_input[model_input["is_trainable"]]
    dates = np.sort(trainable["date"].unique())
    if len(dates) <= holdout_sessions:
        raise ValueError(
            f"{len(dates)} trainable sessions cannot hold a {holdout_sessions}-session holdout "
            "and a training period: lower training.holdout_sessions or ingest more history"
        )
    holdout_start = dates[-holdout_sessions]
    holdout = trainable[trainable["date"] >= holdout_start]
    train = trainable[
        (trainable["date"] < holdout_start) & (trainable["target_date"] < holdout_start)
    ]
    purged = int((trainable["date"] < holdout_start).sum() - len(train))
    if train.empty:
        raise ValueError(
            f"No training rows left: the {holdout_sessions}-session holdout starts "
            f"{pd.Timestamp(holdout_start).date()} and every earlier row's label reaches into it "
            f"({purged} rows purged); lower training.holdout_sessions or ingest more history"
        )
    logger.info(
        "Train %s..%s (%d rows, %d purged), holdout %s..%s (%d rows)",
        train.date.min().date(),
        train.date.max().date(),
        len(train),
        purged,
        holdout.date.min().date(),
        holdout.date.max().date(),
        len(holdout),
    )
    return train.reset_index(drop=True), holdout.reset_index(drop=True)


def train_model(train: pd.DataFrame, model: dict) -> Pipeline:
    """Fit a scaled, L2-regularised logistic regression on the up/down label."""
    estimator = Pipeline(
        [
            ("scale", StandardScaler()),
            ("classify", LogisticRegression(C=float(model["C"]), max_iter=int(model["max_iter"]))),
        ]
    )
    estimator.fit(train[feature_columns(train)], train["label_up"].astype(int))
    return estimator


def evaluate_model(
    estimator: Pipeline, holdout: pd.DataFrame, threshold: float
) -> dict[str, dict[str, float]]:
    """Holdout metrics of the model and of the always-up baseline, as kedro-mlflow metrics."""
    y = holdout["label_up"].astype(int).to_numpy()
    proba = estimator.predict_proba(holdout[list(estimator.feature_names_in_)])[:, 1]
    predicted = (proba >= threshold).astype(int)
    metrics = {
        "holdout_accuracy": accuracy_score(y, predicted),
        "holdout_roc_auc": roc_auc_score(y, proba) if len(np.unique(y)) == 2 else float("nan"),
        "holdout_f1": f1_score(y, predicted, zero_division=0),
        "holdout_log_loss": log_loss(y, proba, labels=[0, 1]),
        "holdout_rows": float(len(y)),
        "baseline_always_up_accuracy": float(y.mean()),
    }
    logger.info("Holdout metrics: %s", {k: round(v, 4) for k, v in metrics.items()})
    return {name: {"value": float(value), "step": 0} for name, value in metrics.items()}


def register_model(estimator: Pipeline) -> Pipeline:
    """Hand the fitted model to ``champion_model``, whose dataset logs, registers and aliases it.

    A separate output because a persisted model reloads from the registry as a ``ServingModel``,
    while evaluation needs the in-memory estimator of this run.
    """
    return estimator


def reference_features(train: pd.DataFrame) -> pd.DataFrame:
    """The training feature distribution that monitoring compares new data against."""
    return train[["symbol", "date", *feature_columns(train)]].reset_index(drop=True)


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
