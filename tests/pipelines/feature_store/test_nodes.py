"""Feature store nodes: features, labels, model input, and no look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stock_ml.pipelines.feature_store.nodes import (
    build_features,
    build_labels,
    build_model_input,
    feature_set_hash,
)
from stock_ml.synthetic import generate_ohlcv

CLOSE = [10.0, 8.0, 9.0, 11.0, 10.0, 12.0, 10.0]
DATES = pd.bdate_range("2024-01-01", periods=len(CLOSE))  # Mon 1 Jan .. Tue 9 Jan


def _prices(close=CLOSE, symbol="AAA", dates=DATES) -> pd.DataFrame:
    """Typed silver prices of one symbol with hand-picked values."""
    close = np.asarray(close, dtype=float)
    return pd.DataFrame(
        {
            "symbol": symbol,
            "date": dates[: len(close)],
            "open": close - 1.0,
            "high": close + 2.0,
            "low": close - 2.0,
            "close": close,
            "volume": np.arange(1, len(close) + 1, dtype=float) * 100.0,
        }
    )


RUN = {"id": "gold-run-1"}


def _features(prices, families=("KMID", "KLEN", "ROC", "MA"), windows=(5,), ranked=(), run=RUN):
    conf = {"families": list(families), "windows": list(windows), "cross_sectional_ranks": ranked}
    return build_features(prices, conf, run)


# --- build_features -----------------------------------------------------------------------------


def test_build_features_hand_computed_values():
    features = _features(_prices())
    assert list(features.columns) == [
        "symbol",
        "date",
        "kmid",
        "klen",
        "roc5",
        "ma5",
        "dataset_run_id",
        "feature_schema_hash",
    ]
    # Qlib's ROC: Ref($close, d) / $close
    assert features["roc5"].iloc[:5].isna().all()
    assert features["roc5"].iloc[5] == pytest.approx(10.0 / 12.0)
    assert features["roc5"].iloc[6] == pytest.approx(8.0 / 10.0)
    # MA: Mean($close, d) / $close; mean(10, 8, 9, 11, 10) = 9.6 at row 4
    assert features["ma5"].iloc[:4].isna().all()
    assert features["ma5"].iloc[4] == pytest.approx(9.6 / 10.0)
    # kmid = (close - open) / open, klen = (high - low) / open; open = close - 1
    assert features["kmid"].iloc[0] == pytest.approx(1.0 / 9.0)
    assert features["klen"].iloc[1] == pytest.approx(4.0 / 7.0)


def test_every_gold_row_carries_the_build_run_and_schema_hash():
    features = _features(_prices())
    conf = {"families": ["KMID", "KLEN", "ROC", "MA"], "windows": [5], "cross_sectional_ranks": []}
    assert set(features["dataset_run_id"]) == {"gold-run-1"}
    assert set(features["feature_schema_hash"]) == {feature_set_hash(conf)}
    ranked = feature_set_hash({**conf, "cross_sectional_ranks": ["roc5"]})
    wider = feature_set_hash({**conf, "windows": [5, 10]})
    assert len({feature_set_hash(conf), ranked, wider}) == 3


def test_cross_sectional_ranks_are_per_date_across_symbols(synthetic_prices):
    features = _features(synthetic_prices, ranked=["roc5"])
    ranks = features.pivot(index="date", columns="symbol", values="roc5_csrank").dropna()
    values = features.pivot(index="date", columns="symbol", values="roc5").loc[ranks.index]
    assert np.array_equal(ranks.to_numpy(), values.rank(axis=1, pct=True).to_numpy())
    assert set(np.unique(ranks.to_numpy())) == {1 / 3, 2 / 3, 1.0}


def test_ranking_a_feature_that_is_not_built_is_a_conf_error(synthetic_prices):
    with pytest.raises(ValueError, match=r"cross_sectional_ranks names features not built.*roc20"):
        _features(synthetic_prices, ranked=["roc20"])


def test_build_features_one_row_per_symbol_session_and_symbols_independent(synthetic_prices):
    features = _features(synthetic_prices, windows=[5, 10])
    assert len(features) == len(synthetic_prices)
    assert not features.duplicated(["symbol", "date"]).any()
    alone = _features(synthetic_prices[synthetic_prices.symbol == "BBB"], windows=[5, 10])
    within = features[features.symbol == "BBB"].reset_index(drop=True)
    pd.testing.assert_frame_equal(within, alone.reset_index(drop=True))
    # Warm-up: roc10 needs 10 earlier closes, so the first 10 rows of each symbol are incomplete.
    complete = features.drop(columns=["symbol", "date"]).notna().all(axis=1)
    assert complete.groupby(features.symbol).apply(lambda s: int((~s).sum())).tolist() == [10] * 3


def test_build_features_never_stores_infinities():
    prices = _prices()
    prices.loc[3, "open"] = 0.0  # kmid and klen divide by open
    features = _features(prices)
    assert np.isnan(features.loc[3, "kmid"])
    assert np.isnan(features.loc[3, "klen"])
    values = features.drop(columns=["symbol", "date", "dataset_run_id", "feature_schema_hash"])
    assert not np.isinf(values.to_numpy()).any()


# --- build_labels -------------------------------------------------------------------------------


def test_build_labels_horizon_2_hand_computed():
    labels = build_labels(_prices(), horizon=2, run=RUN)
    assert list(labels.columns) == [
        "symbol",
        "date",
        "target_date",
        "forward_return",
        "label_up",
        "horizon",
        "label_run_id",
    ]
    assert labels["forward_return"].iloc[0] == pytest.approx(9.0 / 10.0 - 1)  # -0.1
    assert labels["forward_return"].iloc[1] == pytest.approx(11.0 / 8.0 - 1)  # 0.375
    assert labels["forward_return"].iloc[4] == pytest.approx(0.0)  # 10 -> 10
    assert labels["forward_return"].iloc[3] == pytest.approx(12.0 / 11.0 - 1)
    assert labels["label_up"].iloc[:5].tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]
    # target_date is the session 2 rows later (Fri 5 Jan -> Tue 9 Jan crosses a weekend)
    assert labels["target_date"].iloc[0] == DATES[2]
    assert labels["target_date"].iloc[4] == DATES[6]
    assert (labels["horizon"] == 2).all()


def test_build_labels_nan_where_horizon_passes_data_end():
    labels = build_labels(_prices(), horizon=2, run=RUN)
    tail = labels.iloc[-2:]
    assert tail["target_date"].isna().all()
    assert tail["forward_return"].isna().all()
    assert tail["label_up"].isna().all()
    assert labels.iloc[:-2][["target_date", "forward_return", "label_up"]].notna().all(axis=None)


def test_build_labels_do_not_cross_symbols():
    prices = pd.concat([_prices(symbol="AAA"), _prices(close=[50.0] * 7, symbol="BBB")])
    labels = build_labels(prices.reset_index(drop=True), horizon=3, run=RUN)
    aaa = labels[labels.symbol == "AAA"]
    assert aaa["label_up"].iloc[-3:].isna().all()  # not realised from BBB's first rows
    assert aaa["forward_return"].iloc[3] == pytest.approx(10.0 / 11.0 - 1)
    bbb = labels[labels.symbol == "BBB"]
    assert bbb["forward_return"].iloc[:4].tolist() == [0.0] * 4


def test_build_labels_rejects_horizon_below_one():
    with pytest.raises(ValueError, match="horizon must be"):
        build_labels(_prices(), horizon=0, run=RUN)


# --- build_model_input --------------------------------------------------------------------------


def test_build_model_input_flags_feature_warmup_and_unlabelled_tail():
    prices = _prices()
    features = _features(prices, families=["ROC", "MA"], windows=[3])
    labels = build_labels(prices, horizon=2, run=RUN)
    model_input = build_model_input(features, labels)
    assert len(model_input) == len(prices)
    # roc3 needs 3 past closes: rows 0-2 are in warm-up.
    assert model_input["has_features"].tolist() == [False] * 3 + [True] * 4
    # The last 2 rows have no realised label.
    assert model_input["is_trainable"].tolist() == [False] * 3 + [True] * 2 + [False] * 2
    assert model_input.loc[3, "forward_return"] == pytest.approx(12.0 / 11.0 - 1)
    assert model_input.loc[3, "target_date"] == DATES[5]


def test_build_model_input_joins_labels_by_symbol_and_date(model_input, synthetic_prices):
    labels = build_labels(synthetic_prices, 3, RUN)
    merged = model_input.merge(labels, on=["symbol", "date"], suffixes=("", "_expected"))
    assert len(merged) == len(model_input) == len(synthetic_prices)
    np.testing.assert_array_equal(merged["forward_return"], merged["forward_return_expected"])
    assert (model_input["is_trainable"] <= model_input["has_features"]).all()
    assert model_input.loc[model_input.is_trainable, "label_up"].notna().all()


# --- no look-ahead ------------------------------------------------------------------------------


def _perturb_after(prices: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """Multiply every value after ``cutoff`` by a factor that also changes from day to day."""
    perturbed = prices.copy()
    after = perturbed["date"] > cutoff
    steps = perturbed.loc[after].groupby("symbol").cumcount().to_numpy()
    factor = 3.0 * (1.0 + 0.05 * steps)
    for column in ["open", "high", "low", "close", "volume"]:
        perturbed.loc[after, column] = perturbed.loc[after, column] * factor
    return perturbed


@pytest.fixture
def leakage_case():
    prices = generate_ohlcv(["AAA", "BBB"], "2023-01-02", 80, seed=21)
    cutoff = prices["date"].sort_values().unique()[50]
    return prices, _perturb_after(prices, cutoff), pd.Timestamp(cutoff)


def test_features_up_to_t_do_not_depend_on_later_prices(leakage_case):
    prices, perturbed, cutoff = leakage_case
    families = ["ALL"]  # every family of the registry
    before = _features(prices, families, windows=[5, 10, 20])
    after = _features(perturbed, families, windows=[5, 10, 20])
    past = before["date"] <= cutoff
    assert past.sum() == 2 * 51
    pd.testing.assert_frame_equal(before[past], after[past], check_exact=True)
    # The perturbation is real: features after t do move.
    assert not np.allclose(before.loc[~past, "roc5"], after.loc[~past, "roc5"], equal_nan=True)


def test_labels_change_only_where_target_date_is_after_t(leakage_case):
    prices, perturbed, cutoff = leakage_case
    before = build_labels(prices, 5, RUN)
    after = build_labels(perturbed, 5, RUN)
    known = before["target_date"] <= cutoff
    assert known.sum() == 2 * 46
    pd.testing.assert_frame_equal(before[known], after[known], check_exact=True)
    later = before["target_date"] > cutoff
    assert later.sum() > 0
    changed = ~np.isclose(before.loc[later, "forward_return"], after.loc[later, "forward_return"])
    assert changed.all()
