"""Feature store: silver → gold (features, labels, model input).

Every per-symbol computation looks only backwards (rolling windows end at t) except the label,
which looks N sessions forward by definition and is stored apart from the features.
"""

from __future__ import annotations

import hashlib
import json
import logging

import numpy as np
import pandas as pd

from stock_ml.gold_schema import feature_columns
from stock_ml.pipelines.feature_store.registry import (
    KEYS,
    PRICE_INPUTS,
    compute_features,
    feature_names,
    rank_columns,
    schema_hash,
    with_ranks,
)

logger = logging.getLogger(__name__)


def feature_set_hash(features: dict) -> str:
    """The gold schema's fingerprint: the registry's schema hash plus the cross-sectional ranks."""
    base = schema_hash(list(features["families"]), list(features["windows"]))
    ranked = sorted(features.get("cross_sectional_ranks") or [])
    if not ranked:
        return base
    return hashlib.sha256(json.dumps([base, ranked]).encode()).hexdigest()


def build_features(silver, features: dict, run: dict):
    """Gold feature store: one row per symbol × session, the families chosen in conf.

    The engine follows the catalog: a pandas silver table is computed in-process over the whole
    panel; a Spark one (``spark.SparkDatasetV2`` in an env's catalog) maps the very same pandas
    functions per symbol and per date with ``applyInPandas``. Every row carries the build's
    ``dataset_run_id`` and ``feature_schema_hash`` so training can say which gold it learnt from.
    """
    families, windows = list(features["families"]), list(features["windows"])
    ranked = list(features.get("cross_sectional_ranks") or [])
    rank_columns(ranked, feature_names(families, windows))  # a conf error fails before any work
    lineage = {"dataset_run_id": str(run["id"]), "feature_schema_hash": feature_set_hash(features)}
    if isinstance(silver, pd.DataFrame):
        table = compute_features(silver[PRICE_INPUTS], families, windows)
        table = with_ranks(table, ranked).assign(**lineage)
        logger.info(
            "Gold features (pandas): %d rows × %d features, schema %s",
            len(table),
            len(feature_columns(table)),
            lineage["feature_schema_hash"][:12],
        )
        return table
    from pyspark.sql import functions as F  # noqa: N812  (pyspark's own convention)

    from stock_ml.pipelines.feature_store.spark_engine import build_features_spark

    logger.info("Gold features (Spark): schema %s", lineage["feature_schema_hash"][:12])
    table = build_features_spark(silver, families, windows, ranked)
    return table.select("*", *[F.lit(value).alias(name) for name, value in lineage.items()])


def build_labels(silver: pd.DataFrame, horizon: int, run: dict) -> pd.DataFrame:
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
    labels["label_run_id"] = str(run["id"])
    return labels


def build_model_input(features: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Point-in-time join of features at t with the label that t's close starts.

    ``is_trainable`` marks rows with a realised label and a complete feature vector; rows without a
    label (horizon past the data end) are kept, they are what inference scores.
    """
    joined = features.merge(labels, on=KEYS, how="left", validate="one_to_one")
    complete = joined[feature_columns(features)].notna().all(axis=1)
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
