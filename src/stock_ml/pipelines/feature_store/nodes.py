"""Feature store: silver → gold (features, labels, model input).

Every per-symbol computation looks only backwards (rolling windows end at t) except the label,
which looks N sessions forward by definition and is stored apart from the features.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

KEYS = ["symbol", "date"]


def _rsi(close: pd.Series, window: int) -> pd.Series:
    """Wilder's RSI scaled to [0, 1]."""
    change = close.diff()
    gain = change.clip(lower=0).ewm(alpha=1 / window, min_periods=window, adjust=False).mean()
    loss = (-change.clip(upper=0)).ewm(alpha=1 / window, min_periods=window, adjust=False).mean()
    return gain / (gain + loss)


def symbol_features(prices: pd.DataFrame, windows: list[int], rsi_window: int) -> pd.DataFrame:
    """Features of one symbol's date-sorted prices; row t uses rows ≤ t only.

    Pure pandas on one symbol, so the Spark engine (issue #4) can map it with applyInPandas.
    """
    close, volume = prices["close"], prices["volume"]
    log_return = np.log(close).diff()
    out = pd.DataFrame({"symbol": prices["symbol"], "date": prices["date"]})
    out["kmid"] = (close - prices["open"]) / prices["open"]
    out["klen"] = (prices["high"] - prices["low"]) / prices["open"]
    for w in windows:
        out[f"roc_{w}"] = close / close.shift(w) - 1.0
        out[f"ma_ratio_{w}"] = close / close.rolling(w, min_periods=w).mean() - 1.0
        out[f"std_{w}"] = log_return.rolling(w, min_periods=w).std()
        out[f"vma_ratio_{w}"] = volume / volume.rolling(w, min_periods=w).mean() - 1.0
    out[f"rsi_{rsi_window}"] = _rsi(close, rsi_window)
    return out


def build_features(silver: pd.DataFrame, windows: list[int], rsi_window: int) -> pd.DataFrame:
    """Gold feature store: one row per symbol × session."""
    frames = [
        symbol_features(group, windows, rsi_window)
        for _, group in silver.groupby("symbol", sort=True)
    ]
    features = pd.concat(frames, ignore_index=True)
    values = features.drop(columns=KEYS)
    infinite = np.isinf(values.to_numpy())
    if infinite.any():
        # e.g. a volume ratio over a window of zero volume: undefined, so missing, and said so
        per_feature = dict(zip(values.columns, infinite.sum(axis=0).tolist(), strict=True))
        logger.warning(
            "Infinite feature values set to NaN: %s", {k: v for k, v in per_feature.items() if v}
        )
        features[values.columns] = values.replace([np.inf, -np.inf], np.nan)
    logger.info("Gold features: %d rows × %d features", len(features), features.shape[1] - 2)
    return features


def build_labels(silver: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """Gold label store: forward ``horizon``-session return from t's close and its up/down class.

    ``target_date`` is the session whose close realises the label; it is NaT (and the label NaN)
    where the horizon runs past the data end. Those rows are the ones to score, never to train on.
    """
    if horizon < 1:
        raise ValueError(f"label horizon must be ≥ 1 session, got {horizon}")
    by_symbol = silver.groupby("symbol", sort=False)
    labels = silver[KEYS].copy()
    future_close = by_symbol["close"].shift(-horizon)
    labels["target_date"] = by_symbol["date"].shift(-horizon)
    labels["forward_return"] = future_close / silver["close"] - 1.0
    labels["label_up"] = (labels["forward_return"] > 0).astype("float64")
    labels.loc[labels["forward_return"].isna(), "label_up"] = np.nan
    labels["horizon"] = horizon
    return labels


def build_model_input(features: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Point-in-time join of features at t with the label that t's close starts.

    ``is_trainable`` marks rows with a realised label and a complete feature vector; rows without a
    label (horizon past the data end) are kept, they are what inference scores.
    """
    joined = features.merge(labels, on=KEYS, how="left", validate="one_to_one")
    feature_columns = [c for c in features.columns if c not in KEYS]
    complete = joined[feature_columns].notna().all(axis=1)
    joined["has_features"] = complete
    joined["is_trainable"] = complete & joined["label_up"].notna()
    logger.info(
        "Model input: %d rows, %d trainable, %d awaiting a label, %d in feature warm-up",
        len(joined),
        int(joined.is_trainable.sum()),
        int((complete & joined.label_up.isna()).sum()),
        int((~complete).sum()),
    )
    return joined
