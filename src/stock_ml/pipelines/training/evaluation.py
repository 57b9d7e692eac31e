"""Honest holdout evaluation: classification metrics, per-date IC, and a cost-aware backtest.

Everything here takes scores that were computed at date t from data up to t, and compares them
with what happened after t (the label's forward return, daily closes). The same functions score
the model, the champion and the naive baselines, so their rows in the report are comparable.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score

# Metrics where a smaller value is better (gates and comparisons need the direction).
LOWER_IS_BETTER = frozenset({"log_loss", "max_drawdown"})
OBJECTIVES = {"rank_ic", "ic", "roc_auc", "neg_log_loss", "accuracy"}
# The report columns the training log and the model card show (the report keeps every metric).
HEADLINE_METRICS = [
    "accuracy",
    "roc_auc",
    "f1",
    "log_loss",
    "ic_mean",
    "ic_tstat",
    "rank_ic_mean",
    "rank_ic_tstat",
    "rank_ic_tstat_nw",
    "annual_return",
    "sharpe",
    "max_drawdown",
    "win_rate",
    "trades",
]
MIN_SYMBOLS_FOR_IC = 3


def classification_metrics(
    label: np.ndarray, predicted: np.ndarray, score: np.ndarray, probabilistic: bool
) -> dict[str, float]:
    """Accuracy, F1 and ROC-AUC of a scorer; log loss only where the score is a probability."""
    two_classes = len(np.unique(label)) == 2
    return {
        "accuracy": float(accuracy_score(label, predicted)),
        "f1": float(f1_score(label, predicted, zero_division=0)),
        "roc_auc": float(roc_auc_score(label, score)) if two_classes else math.nan,
        "log_loss": float(log_loss(label, np.clip(score, 1e-15, 1 - 1e-15), labels=[0, 1]))
        if probabilistic
        else math.nan,
        "rows": float(len(label)),
        "up_share": float(np.mean(label)),
    }


def rank_correlation(score: pd.Series, forward_return: pd.Series) -> float:
    """Spearman correlation of scores with realised returns; NaN where it says nothing (fewer
    than three symbols, or a constant score)."""
    usable = len(score) >= MIN_SYMBOLS_FOR_IC and score.nunique() > 1
    return score.corr(forward_return, method="spearman") if usable else math.nan


def daily_ic(frame: pd.DataFrame, score: str) -> pd.DataFrame:
    """Per-date Pearson IC and Spearman rank IC of ``score`` against the forward return.

    A date with fewer than three scored symbols, or a constant score, has no IC (NaN): a
    correlation across two points, or of a constant, says nothing.
    """
    records = []
    for date, group in frame.groupby("date", sort=True):
        day = group[[score, "forward_return"]].dropna()
        usable = len(day) >= MIN_SYMBOLS_FOR_IC and day[score].nunique() > 1
        records.append(
            {
                "date": date,
                "symbols": len(day),
                "ic": day[score].corr(day["forward_return"]) if usable else math.nan,
                "rank_ic": rank_correlation(day[score], day["forward_return"]),
            }
        )
    return pd.DataFrame.from_records(records, columns=["date", "symbols", "ic", "rank_ic"])


def newey_west_tstat(series: np.ndarray, lags: int) -> float:
    """t-statistic of the mean with a Newey–West (Bartlett) long-run variance.

    Daily ICs of a ``horizon``-session label overlap by ``horizon - 1`` sessions, so they are
    autocorrelated and the plain t-stat overstates significance. Written out (ten lines) rather
    than pulling statsmodels into the runtime for one estimator.
    """
    x = series[~np.isnan(series)]
    n = len(x)
    if n < 2:
        return math.nan
    centred = x - x.mean()
    variance = centred @ centred / n
    for lag in range(1, min(lags, n - 1) + 1):
        weight = 1.0 - lag / (lags + 1.0)
        variance += 2.0 * weight * (centred[lag:] @ centred[:-lag]) / n
    if variance <= 0:
        return math.nan
    return float(x.mean() / math.sqrt(variance / n))


def ic_summary(ic: pd.DataFrame, horizon: int) -> dict[str, float]:
    """Mean, std, t-stat (plain and Newey–West) of the per-date IC and rank IC."""
    summary: dict[str, float] = {}
    for column in ["ic", "rank_ic"]:
        values = ic[column].to_numpy(dtype=float)
        valid = values[~np.isnan(values)]
        n = len(valid)
        mean = float(valid.mean()) if n else math.nan
        std = float(valid.std(ddof=1)) if n > 1 else math.nan
        summary[f"{column}_mean"] = mean
        summary[f"{column}_std"] = std
        summary[f"{column}_tstat"] = mean / (std / math.sqrt(n)) if n > 1 and std > 0 else math.nan
        summary[f"{column}_tstat_nw"] = newey_west_tstat(values, lags=max(horizon - 1, 0))
        summary[f"{column}_dates"] = float(n)
    return summary


def objective_score(name: str, rows: pd.DataFrame, proba: np.ndarray) -> float:
    """The search objective of one validation fold (higher is better)."""
    if name not in OBJECTIVES:
        raise ValueError(f"training.search.objective must be one of {sorted(OBJECTIVES)}: {name}")
    label = rows["label_up"].astype(int).to_numpy()
    if name in {"rank_ic", "ic"}:
        frame = pd.DataFrame(
            {
                "date": rows["date"].to_numpy(),
                "score": proba,
                "forward_return": rows["forward_return"],
            }
        )
        values = daily_ic(frame, "score")[name].to_numpy(dtype=float)
        # A constant scorer (e.g. an over-regularised model) carries no ranking information.
        return float(np.nanmean(values)) if np.isfinite(values).any() else 0.0
    if name == "roc_auc":
        return float(roc_auc_score(label, proba)) if len(np.unique(label)) == 2 else 0.5
    if name == "neg_log_loss":
        return -float(log_loss(label, proba, labels=[0, 1]))
    return float(accuracy_score(label, (proba >= 0.5).astype(int)))


def daily_returns(prices: pd.DataFrame) -> pd.DataFrame:
    """Close-to-close return realised on each session, per symbol (``date`` × ``symbol``)."""
    ordered = prices.sort_values(["symbol", "date"])
    returns = ordered.groupby("symbol", sort=False)["close"].pct_change(fill_method=None)
    return (
        ordered.assign(ret=returns).pivot(index="date", columns="symbol", values="ret").sort_index()
    )


def momentum(prices: pd.DataFrame, sessions: int) -> pd.DataFrame:
    """Past ``sessions``-session return at each (symbol, date): the momentum baseline's score."""
    ordered = prices.sort_values(["symbol", "date"])
    past = ordered.groupby("symbol", sort=False)["close"].shift(sessions)
    return ordered.assign(score=ordered["close"] / past - 1.0)[["symbol", "date", "score"]]


def backtest_top_k(
    scores: pd.DataFrame,
    returns: pd.DataFrame,
    top_k: int | None,
    rebalance_every: int,
    cost_bp: float,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Long the ``top_k`` best-scored symbols, equal weight, rebalanced every ``rebalance_every``.

    Scores of date t are acted on at t's close; positions earn the close-to-close returns of the
    following sessions and drift with them between rebalances. Each rebalance pays
    ``cost_bp`` basis points on the traded notional (turnover), and so does the final exit. A
    ``top_k`` of None holds every scored symbol (the always-up baseline: the equal-weight
    universe). Returns the daily equity table and one row per round-trip trade.
    """
    if rebalance_every < 1:
        raise ValueError(f"backtest rebalance_every must be ≥ 1, got {rebalance_every}")
    cost = cost_bp / 1e4
    dates = np.sort(scores["date"].unique())
    by_date = {date: day.dropna(subset=["score"]) for date, day in scores.groupby("date")}
    held: dict[str, float] = {}  # symbol -> value, in units of starting equity
    open_trades: dict[str, dict] = {}
    trades, days = [], []
    equity = 1.0
    for i, date in enumerate(dates):
        previous = equity
        missing = 0
        if i > 0 and held:
            day_returns = returns.loc[date] if date in returns.index else pd.Series(dtype=float)
            for symbol in held:
                r = day_returns.get(symbol, np.nan)
                if pd.isna(r):
                    missing += 1  # no close that day: the position is carried flat
                    r = 0.0
                held[symbol] *= 1.0 + r
                open_trades[symbol]["growth"] *= 1.0 + r
                open_trades[symbol]["sessions"] += 1
            equity = sum(held.values())
        last = i == len(dates) - 1
        traded = 0.0  # share of equity bought plus sold at this close
        if last or i % rebalance_every == 0:
            target = [] if last else _top_symbols(by_date.get(date), top_k)
            weight = equity / len(target) if target else 0.0
            new = dict.fromkeys(target, weight)
            turnover = sum(
                abs(new.get(s, 0.0) - held.get(s, 0.0)) for s in sorted(set(new) | set(held))
            )
            charge = turnover * cost
            traded = turnover / equity if equity else 0.0
            for symbol in sorted(set(held) - set(new)):
                trade = open_trades.pop(symbol)
                net = trade["growth"] * (1 - cost) ** 2 - 1.0
                trades.append({**trade, "symbol": symbol, "exit_date": date, "net_return": net})
            scale = (equity - charge) / equity if equity else 1.0
            held = {s: v * scale for s, v in new.items()}
            for symbol in sorted(set(new) - set(open_trades)):
                open_trades[symbol] = {"entry_date": date, "growth": 1.0, "sessions": 0}
            equity -= charge
        days.append(
            {
                "date": date,
                "net_return": equity / previous - 1.0 if i > 0 else equity - 1.0,
                "equity": equity,
                "turnover": traded,
                "positions": len(held),
                "missing_returns": missing,
            }
        )
    trade_table = pd.DataFrame.from_records(
        trades,
        columns=["symbol", "entry_date", "exit_date", "sessions", "growth", "net_return"],
    )
    return pd.DataFrame.from_records(days), trade_table


def _top_symbols(day: pd.DataFrame | None, top_k: int | None) -> list[str]:
    """Best ``top_k`` symbols by score; ties broken by symbol so the pick is deterministic."""
    if day is None or day.empty:
        return []
    ranked = day.sort_values(["score", "symbol"], ascending=[False, True])
    return ranked["symbol"].tolist() if top_k is None else ranked["symbol"].head(top_k).tolist()


def sharpe_ratio(returns: np.ndarray, periods_per_year: float) -> float:
    """Annualised Sharpe ratio of per-period returns; NaN below two periods or with no spread."""
    returns = np.asarray(returns, dtype=float)
    std = float(returns.std(ddof=1)) if len(returns) > 1 else math.nan
    if not (std and std > 0):
        return math.nan
    return float(returns.mean() / std * math.sqrt(periods_per_year))


def backtest_summary(
    days: pd.DataFrame, trades: pd.DataFrame, sessions_per_year: int
) -> dict[str, float]:
    """Annual return, Sharpe, max drawdown, win rate and trade count of one backtest."""
    net = days["net_return"].to_numpy(dtype=float)
    equity = np.concatenate([[1.0], days["equity"].to_numpy(dtype=float)])
    total = float(equity[-1] - 1.0)
    periods = len(net)
    return {
        "total_return": total,
        "annual_return": float((1.0 + total) ** (sessions_per_year / periods) - 1.0)
        if periods and total > -1
        else math.nan,
        "sharpe": sharpe_ratio(net, sessions_per_year),
        "max_drawdown": float(np.max(1.0 - equity / np.maximum.accumulate(equity))),
        "win_rate": float((trades["net_return"] > 0).mean()) if len(trades) else math.nan,
        "trades": float(len(trades)),
        "mean_turnover": float(days.loc[days["turnover"] > 0, "turnover"].mean())
        if (days["turnover"] > 0).any()
        else 0.0,
        "sessions": float(periods),
    }
