"""Inference: score the latest sessions with the model behind an alias.

Scores the last ``score_sessions`` sessions (the unlabeled tail is tomorrow's forecast; earlier
sessions replay what the model would have said then and mature into monitoring's accuracy). Each
prediction names the model version that made it.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from stock_ml.models import ServingModel

logger = logging.getLogger(__name__)


def score_latest_sessions(
    serving: ServingModel,
    model_input: pd.DataFrame,
    score_sessions: int,
    horizon: int,
    threshold: float,
) -> dict[str, pd.DataFrame]:
    """Predictions keyed by (target_prediction_date, symbol), one partition per as-of date.

    ``target_prediction_date`` is the realised label date where known, else the as-of date plus
    ``horizon`` business days (issue #3 replaces this with the exchange calendar).
    """
    if score_sessions < 1:
        raise ValueError(f"inference.score_sessions must be ≥ 1, got {score_sessions}")
    features = list(serving.model.feature_names_in_)
    scorable = model_input[model_input["has_features"]]
    dates = np.sort(scorable["date"].unique())[-score_sessions:]
    rows = scorable[scorable["date"].isin(dates)].copy()
    if rows.empty:
        raise ValueError("No session has a complete feature vector to score")
    rows["score"] = serving.model.predict_proba(rows[features])[:, 1]
    predictions = pd.DataFrame(
        {
            "target_prediction_date": rows["target_date"].fillna(
                rows["date"] + pd.offsets.BDay(horizon)
            ),
            "symbol": rows["symbol"],
            "as_of_date": rows["date"],
            "score": rows["score"],
            "predicted_up": (rows["score"] >= threshold).astype(int),
            "model_name": serving.name,
            "model_alias": serving.alias,
            "model_version": serving.version,
            "mlflow_run_id": serving.run_id,
        }
    )
    logger.info(
        "Scored %d rows over %d sessions with %s v%d (@%s)",
        len(predictions),
        len(dates),
        serving.name,
        serving.version,
        serving.alias,
    )
    return {
        f"as_of_date={day:%Y-%m-%d}": part.reset_index(drop=True)
        for day, part in predictions.groupby("as_of_date")
    }
