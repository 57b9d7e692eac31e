"""The Spark engine gives the pandas engine's gold features: same rows, columns, NaNs and values.

Both engines run the same registry functions (Spark maps them per symbol, then per date), so the
expected difference is none at all; the assertion allows 1e-9 absolute only so that a future
kernel change that is exact per symbol but not bit-stable would report a size, not a failure.
The input is ragged (symbols start on different sessions), like a real universe.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from stock_ml.pipelines.feature_store.registry import (
    DEFAULT_WINDOWS,
    FAMILIES,
    KEYS,
    compute_features,
    cross_sectional_ranks,
    feature_names,
)
from stock_ml.synthetic import generate_ohlcv

ROOT = Path(__file__).resolve().parents[3]
SYMBOLS = ["AAA", "BBB", "CCC", "DDD", "EEE", "FFF"]
LATE_STARTS = {"BBB": 40, "DDD": 125, "FFF": 250}  # FFF: 50 rows, no 60-row window fills


def feature_params() -> tuple[list[str], list[int], list[str]]:
    """families, windows, ranked columns from conf/base (the full registry if not there yet)."""
    params = yaml.safe_load((ROOT / "conf/base/parameters_feature_store.yml").read_text())
    features = params["feature_store"]["features"]
    if "families" not in features:
        return list(FAMILIES), list(DEFAULT_WINDOWS), ["roc5", "ma20", "rsi14"]
    return features["families"], features["windows"], features.get("cross_sectional_ranks", [])


@pytest.fixture(scope="module")
def prices() -> pd.DataFrame:
    """6 symbols × 300 XWAR sessions, three of them starting late; rows shuffled."""
    prices = generate_ohlcv(SYMBOLS, "2021-01-04", 300, seed=23, calendar="XWAR")
    position = prices.groupby("symbol").cumcount()
    late = prices["symbol"].map(LATE_STARTS).fillna(0)
    ragged = prices[position >= late]
    return ragged.sample(frac=1.0, random_state=5).reset_index(drop=True)


def pandas_engine(prices, families, windows, ranked) -> pd.DataFrame:
    features = compute_features(prices, families, windows)
    if not ranked:
        return features
    ranks = cross_sectional_ranks(features, ranked)
    return pd.concat([features, ranks.drop(columns=KEYS)], axis=1)


def test_spark_engine_equals_pandas_engine(spark, prices: pd.DataFrame):
    from stock_ml.pipelines.feature_store.spark_engine import build_features_spark

    families, windows, ranked = feature_params()
    assert ranked, "the parity test must cover the cross-sectional ranks"
    expected = pandas_engine(prices, families, windows, ranked)

    table = build_features_spark(spark.createDataFrame(prices), families, windows, ranked)
    got = table.toPandas()

    names = feature_names(families, windows)
    assert list(got.columns) == [*KEYS, *names, *[f"{c}_csrank" for c in ranked]]
    assert list(got.columns) == list(expected.columns)
    assert got["date"].dtype == np.dtype("datetime64[ns]")
    assert (got.drop(columns=KEYS).dtypes == np.float64).all()
    # the engine sorts by (symbol, date), as compute_features does
    assert got[KEYS].equals(got[KEYS].sort_values(KEYS, ignore_index=True))

    got = got.sort_values(KEYS, ignore_index=True)
    expected = expected.sort_values(KEYS, ignore_index=True)
    pd.testing.assert_frame_equal(got[KEYS], expected[KEYS])  # same (symbol, date) rows
    values, reference = got.drop(columns=KEYS), expected.drop(columns=KEYS)
    assert (values.isna() == reference.isna()).all().all(), "NaN in different places"
    pd.testing.assert_frame_equal(values, reference, check_exact=False, rtol=0, atol=1e-9)

    a, b = values.to_numpy(), reference.to_numpy()
    both = ~np.isnan(a)
    max_abs = float(np.max(np.abs(a[both] - b[both]), initial=0.0))
    bit_exact = np.array_equal(a.view(np.int64), b.view(np.int64))
    print(
        f"\nspark vs pandas: {len(got)} rows × {a.shape[1]} columns, "
        f"{int((~both).sum())} NaN cells, max abs diff {max_abs:.3g}, bit-exact {bit_exact}"
    )


def test_spark_engine_reads_pandas_parquet_exactly(spark, prices: pd.DataFrame, tmp_path: Path):
    """The prod path: silver written by pandas (nanosecond dates), read by Spark, features
    written by Spark and read back by pandas — the same table as the pandas engine's."""
    from stock_ml.pipelines.feature_store.spark_engine import build_features_spark

    families, windows = ["KMID", "ROC", "MACD"], [5, 20]
    silver = tmp_path / "silver.parquet"
    prices.to_parquet(silver)
    gold = tmp_path / "gold.parquet"
    build_features_spark(spark.read.parquet(str(silver)), families, windows, []).write.parquet(
        str(gold)
    )
    back = pd.read_parquet(gold)
    # Spark timestamps are microseconds: pandas reads them as datetime64[us], same instants
    assert back["date"].dtype == np.dtype("datetime64[us]")
    back["date"] = back["date"].astype("datetime64[ns]")
    pd.testing.assert_frame_equal(back, compute_features(prices, families, windows))


def test_ranked_columns_must_be_features(spark, prices: pd.DataFrame):
    from stock_ml.pipelines.feature_store.spark_engine import build_features_spark

    with pytest.raises(ValueError, match="not features"):
        build_features_spark(spark.createDataFrame(prices.head(10)), ["KMID"], [5], ["roc5"])
