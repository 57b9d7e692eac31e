"""Feature registry: every family against a plain pandas per-symbol reference, and the API rules.

The reference below is written the obvious way (groupby symbol, rolling(d, min_periods=d),
rolling.apply where pandas has no method) and shares no code with the panel kernels, so a match
says the vectorised, blocked-sum kernels compute Qlib's formulas.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stock_ml.pipelines.feature_store.registry import (
    DEFAULT_WINDOWS,
    FAMILIES,
    GROUPS,
    compute_features,
    cross_sectional_ranks,
    feature_names,
    formula_table,
    schema_hash,
    warmup_rows,
)
from stock_ml.synthetic import generate_ohlcv

ROOT = Path(__file__).resolve().parents[3]
WINDOWS = DEFAULT_WINDOWS
RTOL = 1e-9
ATOL = 1e-13  # values that are 0 up to rounding (e.g. a residual at the fitted line)


def ragged_universe(seed: int = 11) -> pd.DataFrame:
    """5 symbols × up to 150 sessions with different starts and ends (a ragged panel)."""
    prices = generate_ohlcv(["AAA", "BBB", "CCC", "DDD", "EEE"], "2020-01-02", 150, seed)
    position = prices.groupby("symbol").cumcount()
    keep = (
        (prices.symbol == "AAA")
        | ((prices.symbol == "BBB") & (position >= 20))
        | ((prices.symbol == "CCC") & (position >= 45))
        | ((prices.symbol == "DDD") & (position < 100))
        | ((prices.symbol == "EEE") & (position >= 110))  # 40 rows: no 60-row window fills
    )
    return prices[keep].reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# the pandas reference


def _slope_fit(window: np.ndarray) -> tuple[float, float]:
    x = np.arange(1, len(window) + 1, dtype=float)
    slope, intercept = np.polyfit(x, window, 1)
    return slope, intercept


def _rsquare(window: np.ndarray) -> float:
    x = np.arange(1, len(window) + 1, dtype=float)
    return np.corrcoef(x, window)[0, 1] ** 2


def _resi(window: np.ndarray) -> float:
    slope, intercept = _slope_fit(window)
    return window[-1] - (slope * len(window) + intercept)


def _std(window: np.ndarray) -> float:
    return np.std(window, ddof=1)


def rolling_corr(a: pd.Series, b: pd.Series, d: int) -> pd.Series:
    """Two-pass correlation per window (pandas' online rolling corr drifts by ~1e-9)."""
    x, y = a.to_numpy(), b.to_numpy()
    values = [np.nan] * (d - 1) + [
        np.corrcoef(x[t - d + 1 : t + 1], y[t - d + 1 : t + 1])[0, 1] for t in range(d - 1, len(x))
    ]
    return pd.Series(values[: len(x)], index=a.index)


def _ewm(series: pd.Series, **kwargs) -> pd.Series:
    return series.ewm(adjust=False, **kwargs).mean()


def reference_symbol(g: pd.DataFrame, windows: list[int]) -> pd.DataFrame:  # noqa: PLR0915
    o, h, lo, c, v = (g[k] for k in ("open", "high", "low", "close", "volume"))
    out: dict[str, pd.Series] = {"symbol": g["symbol"], "date": g["date"]}
    rng = h - lo
    out["kmid"] = (c - o) / o
    out["klen"] = (h - lo) / o
    out["kmid2"] = (c - o) / rng
    out["kup"] = (h - np.maximum(o, c)) / o
    out["kup2"] = (h - np.maximum(o, c)) / rng
    out["klow"] = (np.minimum(o, c) - lo) / o
    out["klow2"] = (np.minimum(o, c) - lo) / rng
    out["ksft"] = (2 * c - h - lo) / o
    out["ksft2"] = (2 * c - h - lo) / rng
    out["open0"], out["high0"], out["low0"] = o / c, h / c, lo / c
    out["vwap0"] = (h + lo + c) / 3 / c
    prev_c, prev_v = c.shift(1), v.shift(1)
    up, down = (c - prev_c).clip(lower=0), (prev_c - c).clip(lower=0)
    vup, vdown = (v - prev_v).clip(lower=0), (prev_v - v).clip(lower=0)
    is_up = (c > prev_c).astype(float).where(prev_c.notna())
    is_down = (c < prev_c).astype(float).where(prev_c.notna())
    weighted = (c / prev_c - 1).abs() * v
    cols: dict[str, dict[int, pd.Series]] = {}
    for d in windows:

        def roll(s: pd.Series, d=d):
            return s.rolling(d, min_periods=d)

        maxh, minl = roll(h).max(), roll(lo).min()
        imax = roll(h).apply(lambda w: w.argmax() + 1, raw=True)
        imin = roll(lo).apply(lambda w: w.argmin() + 1, raw=True)
        moves, vmoves = roll((c - prev_c).abs()).sum(), roll((v - prev_v).abs()).sum()
        values = {
            "roc": c.shift(d) / c,
            "ma": roll(c).mean() / c,
            "std": roll(c).apply(_std, raw=True) / c,
            "beta": roll(c).apply(lambda w: _slope_fit(w)[0], raw=True) / c,
            "rsqr": roll(c).apply(_rsquare, raw=True),
            "resi": roll(c).apply(_resi, raw=True) / c,
            "max": maxh / c,
            "min": minl / c,
            "qtlu": roll(c).quantile(0.8) / c,
            "qtld": roll(c).quantile(0.2) / c,
            "rank": roll(c).rank(pct=True),
            "rsv": (c - minl) / (maxh - minl),
            "imax": imax / d,
            "imin": imin / d,
            "imxd": (imax - imin) / d,
            "corr": rolling_corr(c, np.log(v + 1), d),
            "cord": rolling_corr(c / prev_c, np.log(v / prev_v + 1), d),
            "cntp": roll(is_up).mean(),
            "cntn": roll(is_down).mean(),
            "cntd": roll(is_up).mean() - roll(is_down).mean(),
            "sump": roll(up).sum() / moves,
            "sumn": roll(down).sum() / moves,
            "sumd": (roll(up).sum() - roll(down).sum()) / moves,
            "vma": roll(v).mean() / v,
            "vstd": roll(v).apply(_std, raw=True) / v,
            "wvma": roll(weighted).apply(_std, raw=True) / roll(weighted).mean(),
            "vsump": roll(vup).sum() / vmoves,
            "vsumn": roll(vdown).sum() / vmoves,
            "vsumd": (roll(vup).sum() - roll(vdown).sum()) / vmoves,
        }
        for name, series in values.items():
            cols.setdefault(name, {})[d] = series
    for name, by_window in cols.items():
        for d, series in by_window.items():
            out[f"{name}{d}"] = series
    gain = _ewm(up, alpha=1 / 14, min_periods=14)
    loss = _ewm(down, alpha=1 / 14, min_periods=14)
    out["rsi14"] = gain / (gain + loss)
    line = _ewm(c, span=12, min_periods=12) - _ewm(c, span=26, min_periods=26)
    signal = _ewm(line, span=9, min_periods=9)
    out["macd"], out["macd_signal"], out["macd_hist"] = line / c, signal / c, (line - signal) / c
    mean20 = c.rolling(20, min_periods=20).mean()
    std20 = c.rolling(20, min_periods=20).apply(np.std, raw=True)  # ddof=0, two-pass
    out["boll_pos20"] = (c - (mean20 - 2 * std20)) / (4 * std20)
    return pd.DataFrame(out)


def reference(prices: pd.DataFrame, windows: list[int]) -> pd.DataFrame:
    ordered = prices.sort_values(["symbol", "date"]).reset_index(drop=True)
    frames = [reference_symbol(g, windows) for _, g in ordered.groupby("symbol", sort=True)]
    out = pd.concat(frames, ignore_index=True)
    return out.replace([np.inf, -np.inf], np.nan)


@pytest.fixture(scope="module")
def universe() -> pd.DataFrame:
    return ragged_universe()


@pytest.fixture(scope="module")
def ours(universe) -> pd.DataFrame:
    return compute_features(universe, ["ALL"], WINDOWS)


@pytest.fixture(scope="module")
def theirs(universe) -> pd.DataFrame:
    return reference(universe, WINDOWS)


def worst_relative_errors(ours: pd.DataFrame, theirs: pd.DataFrame) -> dict[str, float]:
    """Family -> max |ours - ref| / max(|ref|, ATOL/RTOL) over its columns and defined rows."""
    worst: dict[str, float] = {}
    for family in FAMILIES.values():
        for column in family.columns(WINDOWS):
            a, b = ours[column].to_numpy(), theirs[column].to_numpy()
            both = ~np.isnan(a) & ~np.isnan(b)
            error = np.abs(a[both] - b[both]) / np.maximum(np.abs(b[both]), ATOL / RTOL)
            worst[family.name] = max(worst.get(family.name, 0.0), float(error.max(initial=0.0)))
    return worst


# ---------------------------------------------------------------------------------------------
# values


def test_output_frame_shape_order_and_dtypes(universe, ours):
    names = feature_names(["ALL"], WINDOWS)
    assert list(ours.columns) == ["symbol", "date", *names]
    assert len(ours) == len(universe)
    assert (ours.dtypes[names] == np.float64).all()
    keys = ours[["symbol", "date"]]
    pd.testing.assert_frame_equal(keys, keys.sort_values(["symbol", "date"]))
    assert not np.isinf(ours[names].to_numpy()).any()


def test_reference_has_the_same_columns(ours, theirs):
    assert list(theirs.columns) == list(ours.columns)
    pd.testing.assert_frame_equal(ours[["symbol", "date"]], theirs[["symbol", "date"]])


@pytest.mark.parametrize("family", list(FAMILIES))
def test_family_matches_pandas_reference(family, ours, theirs):
    for column in FAMILIES[family].columns(WINDOWS):
        a, b = ours[column].to_numpy(), theirs[column].to_numpy()
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=f"NaN mask of {column}")
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL, err_msg=column)


def test_worst_relative_error_per_family_is_within_rtol(ours, theirs):
    worst = worst_relative_errors(ours, theirs)
    print("\nworst relative error per family:", {k: f"{v:.1e}" for k, v in worst.items()})
    assert max(worst.values()) <= RTOL


def test_one_symbol_alone_is_bit_identical_to_within_many(universe, ours):
    names = feature_names(["ALL"], WINDOWS)
    for symbol, rows in universe.groupby("symbol"):
        alone = compute_features(rows, ["ALL"], WINDOWS)
        within = ours[ours.symbol == symbol]
        assert np.array_equal(alone[names].to_numpy(), within[names].to_numpy(), equal_nan=True), (
            symbol
        )


def test_slabs_of_symbols_do_not_change_a_bit(universe, ours, monkeypatch):
    """compute_features works slab by slab of symbols (cache-sized); one symbol per slab, or
    two, gives the same bits as the whole panel in one slab."""
    from stock_ml.pipelines.feature_store import registry

    for cells in (1, 2 * 150):
        monkeypatch.setattr(registry, "SLAB_CELLS", cells)
        pd.testing.assert_frame_equal(
            compute_features(universe, ["ALL"], WINDOWS), ours, check_exact=True
        )


def test_input_row_order_does_not_matter(universe, ours):
    shuffled = universe.sample(frac=1.0, random_state=3)
    again = compute_features(shuffled, ["ALL"], WINDOWS)
    pd.testing.assert_frame_equal(again, ours, check_exact=True)


def test_warm_up_is_exactly_the_family_rule(ours):
    rules = warmup_rows(["ALL"], WINDOWS)
    assert rules["roc5"] == 5 and rules["ma5"] == 4 and rules["cntp10"] == 10
    assert rules["rsi14"] == 14 and rules["macd"] == 25 and rules["macd_hist"] == 33
    for symbol, rows in ours.groupby("symbol"):
        for column, nan_rows in rules.items():
            values = rows[column].to_numpy()
            assert np.isnan(values[:nan_rows]).all(), (symbol, column)
            if len(values) > nan_rows:
                assert not np.isnan(values[nan_rows]), (symbol, column)


def test_short_symbol_has_no_value_for_a_window_longer_than_its_history(ours):
    eee = ours[ours.symbol == "EEE"]
    assert len(eee) == 40
    assert eee[[c for c in ours.columns if c.endswith("60")]].isna().all().all()
    assert eee["ma30"].notna().sum() == 40 - 29


def test_zero_volume_and_flat_bars_give_nan_not_inf():
    prices = generate_ohlcv(["ZZZ"], "2020-01-02", 80, 5)
    prices.loc[30:39, "volume"] = 0.0  # a zero-volume stretch
    flat = prices.index[50]
    prices.loc[flat, ["open", "high", "low"]] = prices.loc[flat, "close"]  # high == low bar
    out = compute_features(prices, ["ALL"], WINDOWS)
    names = feature_names(["ALL"], WINDOWS)
    assert not np.isinf(out[names].to_numpy()).any()
    for column in ["kmid2", "kup2", "klow2", "ksft2"]:
        assert np.isnan(out.loc[flat, column])
        assert out[column].drop(index=flat).notna().all()
    assert out.loc[30:39, "vma5"].isna().all()  # Mean(volume)/0
    assert out.loc[35:39, "vsump5"].isna().all()  # no volume move in the window: 0/0
    assert out.loc[34, "vsump5"] == 0.0  # the fall to 0 at row 30 is in the window
    assert out.loc[34:39, "wvma5"].isna().all()  # weighted returns all 0: 0/0
    assert out.loc[31:44, "cord5"].isna().all()  # log(v / 0 + 1) = inf inside the window
    assert out.loc[[30, 45], "cord5"].notna().all()  # log(0 / v + 1) = 0 is fine; defined again


def test_unknown_family_and_bad_window_are_rejected():
    with pytest.raises(ValueError, match="unknown feature family"):
        feature_names(["NOPE"], WINDOWS)
    with pytest.raises(ValueError, match="windows"):
        feature_names(["MA"], [1])


def test_repeated_symbol_date_is_rejected(universe):
    with pytest.raises(ValueError, match="repeated"):
        compute_features(pd.concat([universe, universe.iloc[:1]]), ["MA"], [5])


# ---------------------------------------------------------------------------------------------
# names, hash, docs


def test_feature_names_follow_qlib_names_and_registry_order():
    assert feature_names(["MA", "ROC"], [10, 5]) == ["roc5", "roc10", "ma5", "ma10"]
    assert feature_names(["KBAR"], WINDOWS) == [n.lower() for n in GROUPS["KBAR"]]
    assert feature_names(["MACD", "RSI", "BOLL"], WINDOWS) == [
        "rsi14",
        "macd",
        "macd_signal",
        "macd_hist",
        "boll_pos20",
    ]
    assert "imxd30" in feature_names(["ALPHA158"], WINDOWS)
    assert len(feature_names(["ALPHA158"], WINDOWS)) == 9 + 4 + 29 * 5


def test_schema_hash_changes_with_selection_and_is_stable():
    base = schema_hash(["ROC", "MA"], [5, 10])
    assert base == schema_hash(["MA", "ROC"], [10, 5])  # same selection, other order
    assert len(base) == 64 and int(base, 16) >= 0
    assert schema_hash(["ROC", "MA"], [5, 20]) != base
    assert schema_hash(["ROC", "MA", "STD"], [5, 10]) != base
    assert schema_hash(["ROC"], [5, 10]) != base


def test_schema_hash_is_stable_across_processes():
    code = (
        "from stock_ml.pipelines.feature_store.registry import schema_hash;"
        "print(schema_hash(['ALL'], [5, 10, 20, 30, 60]))"
    )
    runs = [  # two processes at once, with different str hash seeds
        subprocess.Popen(
            [sys.executable, "-c", code],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        for seed in ("1", "2")
    ]
    outputs = {run.communicate(timeout=60)[0].strip() for run in runs}
    assert all(run.returncode == 0 for run in runs)
    assert outputs == {schema_hash(["ALL"], WINDOWS)}


def test_docs_features_md_is_the_generated_formula_table():
    text = (ROOT / "docs" / "features.md").read_text(encoding="utf-8")
    assert text == formula_table(), "regenerate docs/features.md (see the comment at its top)"
    for family in FAMILIES.values():
        assert f"| {family.name} |" in text


# ---------------------------------------------------------------------------------------------
# cross-sectional ranks


def test_cross_sectional_ranks_per_date_equal_whole_table(ours):
    columns = ["ma5", "roc20", "rsi14"]
    whole = cross_sectional_ranks(ours, columns)
    assert list(whole.columns) == ["symbol", "date", "ma5_csrank", "roc20_csrank", "rsi14_csrank"]
    pieces = pd.concat(
        [cross_sectional_ranks(rows, columns) for _, rows in ours.groupby("date")]
    ).sort_index()
    pd.testing.assert_frame_equal(whole, pieces, check_exact=True)
    values = whole[["ma5_csrank", "roc20_csrank", "rsi14_csrank"]].to_numpy()
    defined = values[~np.isnan(values)]
    assert defined.size and (defined > 0).all() and (defined <= 1).all()
    nan_in = np.isnan(ours[columns].to_numpy())
    assert np.array_equal(nan_in, np.isnan(values))


def test_cross_sectional_ranks_average_ties():
    frame = pd.DataFrame(
        {
            "symbol": ["A", "B", "C", "D", "A", "B"],
            "date": pd.to_datetime(["2024-01-02"] * 4 + ["2024-01-03"] * 2),
            "x": [1.0, 2.0, 2.0, np.nan, 5.0, 4.0],
        }
    )
    ranks = cross_sectional_ranks(frame, ["x"])["x_csrank"].to_numpy()
    np.testing.assert_allclose(ranks, [1 / 3, 2.5 / 3, 2.5 / 3, np.nan, 1.0, 0.5])
