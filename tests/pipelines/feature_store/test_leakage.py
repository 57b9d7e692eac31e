"""No look-ahead: features at t are a function of prices at ≤ t only, for every family.

Prices strictly after a cut date are multiplied by random factors (all of open, high, low, close
and volume, every symbol). Every feature on or before the cut must stay bit-identical; after the
cut they must change somewhere, or the perturbation proved nothing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stock_ml.pipelines.feature_store.registry import (
    DEFAULT_WINDOWS,
    FAMILIES,
    compute_features,
    feature_names,
)
from stock_ml.synthetic import PRICE_FIELDS, generate_ohlcv

NAMES = feature_names(["ALL"], DEFAULT_WINDOWS)


def universe() -> pd.DataFrame:
    prices = generate_ohlcv(["AAA", "BBB", "CCC"], "2021-01-04", 140, seed=21)
    late_start = (prices.symbol == "CCC") & (prices.groupby("symbol").cumcount() < 30)
    return prices[~late_start].reset_index(drop=True)


def perturbed_after(prices: pd.DataFrame, cut: pd.Timestamp, seed: int) -> pd.DataFrame:
    """Every price field of every row dated after ``cut`` times a random factor in [0.5, 1.5]."""
    rng = np.random.default_rng(seed)
    out = prices.copy()
    after = out["date"] > cut
    for column in PRICE_FIELDS:
        out.loc[after, column] *= rng.uniform(0.5, 1.5, size=int(after.sum()))
    # keep bars consistent (high the top, low the bottom) so no feature is undefined by accident
    out["high"] = out[["open", "high", "low", "close"]].max(axis=1)
    out["low"] = out[["open", "high", "low", "close"]].min(axis=1)
    return out


@pytest.mark.parametrize("cut_index", [0, 45, 90, 138])
def test_features_up_to_t_ignore_prices_after_t(cut_index):
    prices = universe()
    dates = np.sort(prices["date"].unique())
    cut = pd.Timestamp(dates[cut_index])
    before = compute_features(prices, ["ALL"], DEFAULT_WINDOWS)
    after = compute_features(perturbed_after(prices, cut, seed=cut_index), ["ALL"], DEFAULT_WINDOWS)

    past = (before["date"] <= cut).to_numpy()
    assert np.array_equal(
        before.loc[past, NAMES].to_numpy(), after.loc[past, NAMES].to_numpy(), equal_nan=True
    )
    future_old, future_new = before.loc[~past, NAMES], after.loc[~past, NAMES]
    changed = ~((future_old.to_numpy() == future_new.to_numpy()) | future_old.isna().to_numpy())
    assert changed.any(), "the perturbation changed no feature: the test could not fail"


def test_every_family_reacts_to_the_future_perturbation():
    """Each family's columns change after the cut: no family is trivially constant."""
    prices = universe()
    cut = pd.Timestamp(np.sort(prices["date"].unique())[70])
    before = compute_features(prices, ["ALL"], DEFAULT_WINDOWS)
    after = compute_features(perturbed_after(prices, cut, seed=1), ["ALL"], DEFAULT_WINDOWS)
    future = (before["date"] > cut).to_numpy()
    for family in FAMILIES.values():
        columns = family.columns(DEFAULT_WINDOWS)
        old, new = before.loc[future, columns].to_numpy(), after.loc[future, columns].to_numpy()
        assert not np.array_equal(old, new, equal_nan=True), family.name
