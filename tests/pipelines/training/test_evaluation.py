"""Holdout evaluation maths against hand-computed values: IC, t-stats, the cost-aware backtest."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from stock_ml.pipelines.training import evaluation

DATES = pd.bdate_range("2024-01-01", periods=4)
COST = 10.0  # bp


def _scores(rows: list[tuple[int, str, float]]) -> pd.DataFrame:
    return pd.DataFrame([(DATES[i], s, v) for i, s, v in rows], columns=["date", "symbol", "score"])


def _returns(table: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame(table, index=DATES)


# A on top at d0, B on top at d2; rebalanced every 2 sessions, top 1, 10 bp a side.
SCORES = _scores([(0, "A", 0.9), (0, "B", 0.1), (2, "A", 0.2), (2, "B", 0.8), (1, "A", 0.5)])
SCORES = pd.concat([SCORES, _scores([(1, "B", 0.4), (3, "A", 0.3), (3, "B", 0.6)])])
RETURNS = _returns({"A": [0.5, 0.10, -0.05, 0.0], "B": [-0.5, 0.0, 0.20, 0.10]})


def test_backtest_matches_a_hand_computed_path():
    days, trades = evaluation.backtest_top_k(SCORES, RETURNS, 1, 2, COST)
    c = COST / 1e4
    held_a = 1.0 - c  # d0: buy A with all equity, pay 10 bp on it
    after_d1 = held_a * 1.10
    after_d2 = after_d1 * 0.95
    switch = 2 * after_d2  # d2: sell all A, buy B: turnover twice the equity
    held_b = after_d2 - switch * c
    after_d3 = held_b * 1.10
    final = after_d3 - after_d3 * c  # d3 is the last session: exit everything
    np.testing.assert_allclose(
        days["equity"], [held_a, after_d1, held_b, final], rtol=0, atol=1e-12
    )
    np.testing.assert_allclose(
        days["net_return"],
        [held_a - 1, after_d1 / held_a - 1, held_b / after_d1 - 1, final / held_b - 1],
        atol=1e-12,
    )
    np.testing.assert_allclose(days["turnover"], [1.0, 0.0, 2.0, 1.0], atol=1e-12)
    assert days["positions"].tolist() == [1, 1, 1, 0]
    assert trades["symbol"].tolist() == ["A", "B"]
    assert trades["entry_date"].tolist() == [DATES[0], DATES[2]]
    assert trades["exit_date"].tolist() == [DATES[2], DATES[3]]
    assert trades["sessions"].tolist() == [2, 1]
    np.testing.assert_allclose(
        trades["net_return"], [1.10 * 0.95 * (1 - c) ** 2 - 1, 1.10 * (1 - c) ** 2 - 1]
    )


def test_backtest_acts_on_scores_only_after_they_are_known():
    """Returns realised on or before a rebalance date cannot change that rebalance's outcome."""
    baseline, _ = evaluation.backtest_top_k(SCORES, RETURNS, 1, 2, COST)
    shocked = RETURNS.copy()
    shocked.loc[DATES[0]] = [9.0, -0.9]  # the session the first scores are formed on
    after, _ = evaluation.backtest_top_k(SCORES, shocked, 1, 2, COST)
    pd.testing.assert_frame_equal(baseline, after)
    # … while a return realised after the scores moves the result.
    later = RETURNS.copy()
    later.loc[DATES[1], "A"] = 0.0
    moved, _ = evaluation.backtest_top_k(SCORES, later, 1, 2, COST)
    assert moved["equity"].iloc[-1] < baseline["equity"].iloc[-1]


def test_backtest_without_top_k_holds_every_scored_symbol_and_costs_cut_returns():
    flat = SCORES.assign(score=0.5)
    days, trades = evaluation.backtest_top_k(flat, RETURNS, None, 2, 0.0)
    # equal weight A and B from d0, drifting; rebalanced back to equal weight at d2
    half_a, half_b = 0.5 * 1.10, 0.5 * 1.0
    d2 = half_a * 0.95 + half_b * 1.20
    d3 = d2 / 2 * 1.0 + d2 / 2 * 1.10
    np.testing.assert_allclose(days["equity"], [1.0, half_a + half_b, d2, d3], atol=1e-12)
    assert sorted(trades["symbol"]) == ["A", "B"], "held throughout: one trade each"
    costly, _ = evaluation.backtest_top_k(flat, RETURNS, None, 2, 50.0)
    assert costly["equity"].iloc[-1] < days["equity"].iloc[-1]


def test_backtest_carries_a_missing_close_flat_and_counts_it():
    gappy = RETURNS.copy()
    gappy.loc[DATES[1], "A"] = np.nan
    days, _ = evaluation.backtest_top_k(SCORES, gappy, 1, 2, 0.0)
    assert days["missing_returns"].tolist() == [0, 1, 0, 0]
    assert days["net_return"].iloc[1] == 0.0


def test_backtest_summary_annualises_and_measures_drawdown():
    days = pd.DataFrame(
        {"net_return": [0.10, -0.20, 0.05], "equity": [1.10, 0.88, 0.924], "turnover": [1, 0, 1]}
    )
    trades = pd.DataFrame({"net_return": [0.1, -0.2, 0.3, 0.0]})
    summary = evaluation.backtest_summary(days, trades, sessions_per_year=252)
    net = np.array([0.10, -0.20, 0.05])
    assert summary["total_return"] == pytest.approx(-0.076)
    assert summary["annual_return"] == pytest.approx(0.924 ** (252 / 3) - 1)
    assert summary["sharpe"] == pytest.approx(net.mean() / net.std(ddof=1) * math.sqrt(252))
    assert summary["max_drawdown"] == pytest.approx(0.20)  # 1.10 → 0.88
    assert summary["win_rate"] == 0.5
    assert summary["trades"] == 4.0
    assert summary["mean_turnover"] == 1.0


def test_daily_ic_and_rank_ic():
    rng = np.random.default_rng(0)
    forward = rng.normal(size=12)
    frame = pd.DataFrame(
        {
            "date": np.repeat(DATES[:3], 4),
            "forward_return": forward,
            "score": np.concatenate([forward[:4], -(forward[4:8] ** 3), np.full(4, 0.5)]),
        }
    )
    ic = evaluation.daily_ic(frame, "score")
    assert ic["ic"].iloc[0] == pytest.approx(1.0)
    assert ic["rank_ic"].iloc[0] == pytest.approx(1.0)
    assert ic["rank_ic"].iloc[1] == pytest.approx(-1.0), "monotone decreasing → rank IC −1"
    assert -1.0 < ic["ic"].iloc[1] < 0.0
    assert math.isnan(ic["ic"].iloc[2]) and math.isnan(ic["rank_ic"].iloc[2]), "constant score"
    two = evaluation.daily_ic(frame.iloc[:2], "score")
    assert math.isnan(two["rank_ic"].iloc[0]), "two symbols say nothing about a ranking"


def test_ic_summary_t_stats():
    values = np.array([0.1, 0.05, -0.02, 0.08, 0.03, 0.06])
    ic = pd.DataFrame({"ic": values, "rank_ic": values})
    summary = evaluation.ic_summary(ic, horizon=1)
    n, mean, std = len(values), values.mean(), values.std(ddof=1)
    assert summary["ic_mean"] == pytest.approx(mean)
    assert summary["ic_std"] == pytest.approx(std)
    assert summary["ic_tstat"] == pytest.approx(mean / (std / math.sqrt(n)))
    # horizon 1 → no overlap → Newey–West with 0 lags is the population-variance t-stat
    assert summary["ic_tstat_nw"] == pytest.approx(mean / math.sqrt(values.var() / n))
    assert summary["rank_ic_dates"] == 6.0


def test_newey_west_discounts_autocorrelated_ics():
    # a smooth, positively autocorrelated series: overlapping labels make ICs look like this
    series = 0.05 + 0.04 * np.sin(np.arange(60) / 6.0)
    plain = series.mean() / math.sqrt(series.var() / len(series))
    assert evaluation.newey_west_tstat(series, lags=6) < plain
    assert evaluation.newey_west_tstat(series, lags=0) == pytest.approx(plain)
    assert math.isnan(evaluation.newey_west_tstat(np.array([0.1]), lags=3))


def test_objective_scores():
    rows = pd.DataFrame(
        {
            "date": np.repeat(DATES[:2], 4),
            "forward_return": [0.1, 0.2, -0.1, 0.0, 0.3, -0.2, 0.1, 0.0],
            "label_up": [1, 1, 0, 0, 1, 0, 1, 0],
        }
    )
    proba = np.array([0.6, 0.7, 0.3, 0.4, 0.9, 0.1, 0.6, 0.45])
    assert evaluation.objective_score("rank_ic", rows, proba) == pytest.approx(1.0)
    assert evaluation.objective_score("roc_auc", rows, proba) == pytest.approx(1.0)
    assert evaluation.objective_score("accuracy", rows, proba) == pytest.approx(1.0)
    assert evaluation.objective_score("neg_log_loss", rows, proba) < 0
    assert evaluation.objective_score("rank_ic", rows, np.full(8, 0.5)) == 0.0
    with pytest.raises(ValueError, match="objective must be one of"):
        evaluation.objective_score("sharpe", rows, proba)


def test_daily_returns_and_momentum_use_each_symbols_own_past():
    prices = pd.DataFrame(
        {
            "symbol": ["A", "A", "A", "B", "B", "B"],
            "date": list(DATES[:3]) * 2,
            "close": [10.0, 11.0, 12.1, 20.0, 10.0, 5.0],
        }
    )
    returns = evaluation.daily_returns(prices.iloc[::-1])
    assert math.isnan(returns.loc[DATES[0], "A"])
    assert returns.loc[DATES[1], "A"] == pytest.approx(0.1)
    assert returns.loc[DATES[2], "B"] == pytest.approx(-0.5)
    past = evaluation.momentum(prices, sessions=2).set_index(["symbol", "date"])["score"]
    assert past[("A", DATES[2])] == pytest.approx(0.21)
    assert past[("B", DATES[2])] == pytest.approx(-0.75)
    assert past[["A", "B"]].isna().sum() == 4, "no 2-session past before the third session"
