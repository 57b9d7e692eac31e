"""Spark engine for the gold feature store: the pandas registry functions, mapped by Spark.

Why this module holds no feature logic: ``registry.compute_features`` is pure and bit-identical
per symbol whether it sees one symbol or the whole table, and ``registry.cross_sectional_ranks``
ranks each date on its own rows. So Spark only has to partition the work — one symbol per group
for the features, whole dates (a month of them) per group for the ranks — and call the SAME
functions on each group with ``applyInPandas``. There is one implementation to test and
document; tests/pipelines/feature_store/test_spark_parity.py checks the two engines agree.

Only the Spark path imports this module (the node imports it when its input is not a pandas
DataFrame), so importing pyspark at the top costs the pandas envs nothing.

Dates are ``timestamp_ntz`` on the Spark side: a naive pandas ``datetime64`` maps to it without
a time-zone shift, and Spark writes it to Parquet as a naive timestamp, so the table pandas reads
back has the same naive dates as the pandas engine's (``timestamp`` would be written as
UTC-adjusted and read back by pandas as tz-aware; being micro-seconds, they read back as
``datetime64[us]``). Silver, written by pandas, stores nanoseconds, which Spark can only read as
a long (``spark.sql.legacy.parquet.nanosAsLong``, set in conf/prod/spark.yml); such a column is
converted to datetimes in pandas, inside the per-symbol function, exactly.
"""

from __future__ import annotations

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F  # noqa: N812 - the conventional alias
from pyspark.sql.types import (
    DoubleType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampNTZType,
)

from stock_ml.pipelines.feature_store.registry import (
    KEYS,
    PRICE_INPUTS,
    compute_features,
    feature_names,
    rank_columns,
    with_ranks,
)


def _schema(columns: list[str]) -> StructType:
    """symbol string, date timestamp_ntz, then one double per column."""
    return StructType(
        [
            StructField("symbol", StringType()),
            StructField("date", TimestampNTZType()),
            *[StructField(c, DoubleType()) for c in columns],
        ]
    )


def build_features_spark(
    silver: DataFrame, families: list[str], windows: list[int], ranked: list[str]
) -> DataFrame:
    """Gold features of a Spark silver table: symbol, date, features, then ``<col>_csrank``.

    The same columns and values as the pandas engine (``compute_features`` then
    ``cross_sectional_ranks`` on the whole table), sorted by (symbol, date) like it: the sort
    costs one shuffle, and buys part files whose content does not depend on task scheduling.
    """
    names = feature_names(families, windows)
    families, windows, ranked = list(families), list(windows), list(ranked)
    ranks = rank_columns(ranked, names)
    nanos = isinstance(silver.schema["date"].dataType, LongType)
    prices = silver.select(
        F.col("symbol").cast("string"),
        # a timestamp (createDataFrame's, or a micros parquet file's) -> naive wall-clock time;
        # nanoseconds read as a long (nanosAsLong) are converted in pandas, exactly, below
        F.col("date") if nanos else F.col("date").cast("timestamp_ntz"),
        *[F.col(c).cast("double") for c in PRICE_INPUTS[2:]],
    )

    # Closures, not functools.partial: Spark infers the UDF kind from the type hints, and
    # cloudpickle ships a closure by value (the registry functions it calls, by reference).
    def features_of_symbol(prices: pd.DataFrame) -> pd.DataFrame:
        """One symbol's prices -> its features: exactly the pandas engine's call, on fewer rows."""
        if nanos:
            prices = prices.assign(date=pd.to_datetime(prices["date"], unit="ns"))
        return compute_features(prices, families, windows)

    def ranks_of_dates(features: pd.DataFrame) -> pd.DataFrame:
        """Whole dates' rows -> the same rows plus ``<col>_csrank`` (ranks come back alone)."""
        return with_ranks(features, ranked)

    table = prices.groupBy("symbol").applyInPandas(features_of_symbol, schema=_schema(names))
    if ranked:
        # Whole months per group: cross_sectional_ranks ranks each date on its own rows, so any
        # grouping that keeps a date's rows together gives the same ranks, and ~21 dates a group
        # pay the per-group cost (tens of ms: Arrow to pandas and back) once, not 21 times.
        month = F.year("date") * 100 + F.month("date")
        table = table.groupBy(month).applyInPandas(ranks_of_dates, schema=_schema([*names, *ranks]))
    return table.orderBy(*KEYS)
