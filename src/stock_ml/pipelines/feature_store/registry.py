"""Alpha158-style feature registry: each family declared once, computed on a whole panel.

One declaration per family (name, Qlib-notation formula, inputs, kernel) feeds everything that
must agree: the output columns, the schema hash stored with the feature table, the formula table
in docs/features.md, and the computation itself. The pandas engine calls ``compute_features`` on
the whole table, the Spark engine on one symbol at a time; values are bit-identical either way
because every kernel works row by row on a symbols × sessions panel (see ``panel``).

Semantics (deliberate differences from Qlib, also in the table's notes):

- windows are the previous d rows of the symbol, and a window that is not full is NaN
  (Qlib uses min_periods=1 and so emits values from the first row);
- no ``+1e-12`` in denominators: a division by zero (high == low, zero volume, a flat window)
  gives NaN, not a value of order 1e12;
- a comparison with a missing previous row (``$close > Ref($close, 1)`` on a symbol's first row)
  is NaN, not False.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from stock_ml.pipelines.feature_store import panel as pk

KEYS = pk.KEYS
PRICE_INPUTS = [*KEYS, "open", "high", "low", "close", "volume"]  # what compute_features reads
RANK_SUFFIX = "_csrank"
DEFAULT_WINDOWS = [5, 10, 20, 30, 60]
SCHEMA_VERSION = 1  # bump when a kernel's semantics change without its formula text changing
RSI_WINDOW = 14
MACD_SPANS = (12, 26, 9)
BOLL_WINDOW, BOLL_WIDTH = 20, 2.0
# Panel cells (symbols × sessions) per slab of symbols computed together: small enough that a
# kernel's temporaries stay in the CPU cache, large enough that numpy call overhead is small.
SLAB_CELLS = 1 << 17


class Inputs:
    """The panel plus a memo of derived series and window results shared between families.

    E.g. Max($high, d) serves MAX and RSV, and Δclose serves CNTP..SUMD; each is computed once.
    """

    def __init__(self, panel: pk.Panel):
        self.panel = panel
        self._memo: dict[tuple, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        return self.panel[name]

    def memo(self, key: tuple, make: Callable[[], Any]) -> Any:
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    # derived series ---------------------------------------------------------------------------
    def delta(self, column: str) -> np.ndarray:
        """x - Ref(x, 1): NaN on each symbol's first row."""
        return self.memo(("delta", column), lambda: self[column] - pk.ref(self[column], 1))

    def up(self, column: str) -> np.ndarray:
        """Greater(x - Ref(x, 1), 0)."""
        return self.memo(("up", column), lambda: _nan_kept(self.delta(column), np.maximum, 0.0))

    def down(self, column: str) -> np.ndarray:
        """Greater(Ref(x, 1) - x, 0)."""
        return self.memo(("down", column), lambda: _nan_kept(-self.delta(column), np.maximum, 0.0))

    def rolled(self, kernel: Callable, column: str | np.ndarray, d: int, *args) -> np.ndarray:
        """A panel kernel applied to an input column, memoised by (kernel, column, d, args)."""
        key = (kernel.__name__, column if isinstance(column, str) else id(column), d, *args)
        values = self[column] if isinstance(column, str) else column
        return self.memo(key, lambda: kernel(values, d, *args))


def _nan_kept(x: np.ndarray, op, other) -> np.ndarray:
    """op(x, other) with NaN where x is NaN (np.maximum would keep NaN anyway; explicit)."""
    out = op(x, other)
    out[np.isnan(x)] = np.nan
    return out


def _indicator(condition: np.ndarray, defined: np.ndarray) -> np.ndarray:
    """1.0/0.0 where ``defined``, NaN elsewhere: a comparison with a missing value is missing."""
    return np.where(defined, condition.astype(np.float64), np.nan)


Compute = Callable[[Inputs, int | None], list[np.ndarray]]


@dataclass(frozen=True)
class FeatureFamily:
    """One feature family: a formula, its inputs and the kernel computing it on a panel.

    ``windowed`` families give one column per window d, named ``<name lowercased><d>``; the
    others give the fixed columns in ``outputs``. Warm-up (leading NaN rows of each symbol) is
    d - 1 + ``lag`` for a windowed family (lag 1 when the window runs over a one-row difference
    or the formula needs Ref(x, d)), and ``fixed_warmup`` (one per output) otherwise.
    """

    name: str
    formula: str
    windowed: bool
    needs: tuple[str, ...]
    compute: Compute = field(repr=False, compare=False)
    outputs: tuple[str, ...] = ()
    lag: int = 0
    fixed_warmup: tuple[int, ...] = ()
    note: str = ""
    recursive: bool = False  # an exponential smoother: computed on the whole panel at once

    def columns(self, windows: list[int]) -> list[str]:
        if self.windowed:
            return [f"{self.name.lower()}{d}" for d in windows]
        return list(self.outputs)

    def warmup(self, windows: list[int]) -> dict[str, int]:
        """Column -> number of leading NaN rows per symbol (when the symbol has that many)."""
        if self.windowed:
            return {f"{self.name.lower()}{d}": d - 1 + self.lag for d in windows}
        return dict(zip(self.outputs, self.fixed_warmup, strict=True))


# ---------------------------------------------------------------------------------------------
# kernels per family (Inputs, d) -> [array]


def _kbar(numerator: Callable[[Inputs], np.ndarray], by_range: bool) -> Compute:
    def compute(x: Inputs, d: int | None) -> list[np.ndarray]:
        denominator = x["high"] - x["low"] if by_range else x["open"]
        return [numerator(x) / denominator]

    return compute


def _body(x: Inputs) -> np.ndarray:
    return x["close"] - x["open"]


def _upper_shadow(x: Inputs) -> np.ndarray:
    return x["high"] - np.maximum(x["open"], x["close"])


def _lower_shadow(x: Inputs) -> np.ndarray:
    return np.minimum(x["open"], x["close"]) - x["low"]


def _shift(x: Inputs) -> np.ndarray:
    return 2 * x["close"] - x["high"] - x["low"]


def _over_close(column: str) -> Compute:
    return lambda x, d: [x[column] / x["close"]]


def _vwap_proxy(x: Inputs, d: int | None) -> list[np.ndarray]:
    return [(x["high"] + x["low"] + x["close"]) / 3.0 / x["close"]]


def _per_close(kernel: Callable, column: str = "close", *args) -> Compute:
    """Kernel(column, d, *args) / $close."""
    return lambda x, d: [x.rolled(kernel, column, d, *args) / x["close"]]


def _roc(x: Inputs, d: int) -> list[np.ndarray]:
    return [pk.ref(x["close"], d) / x["close"]]


def _regression(x: Inputs, d: int) -> pk.Regression:
    return x.memo(("regression", d), lambda: pk.window_regression(x["close"], d))


def _rsv(x: Inputs, d: int) -> list[np.ndarray]:
    low = x.rolled(pk.window_min, "low", d)
    high = x.rolled(pk.window_max, "high", d)
    return [(x["close"] - low) / (high - low)]


def _imxd(x: Inputs, d: int) -> list[np.ndarray]:
    return [(x.rolled(pk.window_argmax, "high", d) - x.rolled(pk.window_argmin, "low", d)) / d]


def _log_volume(x: Inputs) -> np.ndarray:
    return x.memo(("log_volume1",), lambda: np.log(x["volume"] + 1.0))


def _corr(x: Inputs, d: int) -> list[np.ndarray]:
    return [pk.window_corr(x["close"], _log_volume(x), d)]


def _cord(x: Inputs, d: int) -> list[np.ndarray]:
    price_ratio = x.memo(("close_ratio",), lambda: x["close"] / pk.ref(x["close"], 1))
    volume_change = x.memo(
        ("log_volume_ratio1",),
        lambda: pk.finite_or_nan(np.log(x["volume"] / pk.ref(x["volume"], 1) + 1.0)),
    )
    return [pk.window_corr(price_ratio, volume_change, d)]


def _count_up(x: Inputs, d: int) -> np.ndarray:
    def make() -> np.ndarray:
        delta = x.delta("close")
        return _indicator(delta > 0, ~np.isnan(delta))

    return x.rolled(pk.window_mean, x.memo(("is_up",), make), d)


def _count_down(x: Inputs, d: int) -> np.ndarray:
    def make() -> np.ndarray:
        delta = x.delta("close")
        return _indicator(delta < 0, ~np.isnan(delta))

    return x.rolled(pk.window_mean, x.memo(("is_down",), make), d)


def _move_sums(x: Inputs, column: str, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum of gains, sum of losses and sum of absolute moves of ``column`` over d rows."""
    gains = x.rolled(pk.window_sum, x.up(column), d)
    losses = x.rolled(pk.window_sum, x.down(column), d)
    moves = x.memo(("abs_delta", column), lambda: np.abs(x.delta(column)))
    return gains, losses, x.rolled(pk.window_sum, moves, d)


def _sum_ratio(column: str, which: str) -> Compute:
    def compute(x: Inputs, d: int) -> list[np.ndarray]:
        gains, losses, moves = _move_sums(x, column, d)
        numerator = {"p": gains, "n": losses, "d": gains - losses}[which]
        return [numerator / moves]

    return compute


def _wvma(x: Inputs, d: int) -> list[np.ndarray]:
    weighted = x.memo(
        ("abs_return_volume",),
        lambda: np.abs(x["close"] / pk.ref(x["close"], 1) - 1.0) * x["volume"],
    )
    return [pk.window_std(weighted, d) / pk.window_mean(weighted, d)]


def _per_volume(kernel: Callable) -> Compute:
    return lambda x, d: [x.rolled(kernel, "volume", d) / x["volume"]]


def _rsi(x: Inputs, d: int | None) -> list[np.ndarray]:
    alpha = 1.0 / RSI_WINDOW
    gain = pk.ewm(x.up("close"), alpha, start=1, min_periods=RSI_WINDOW)
    loss = pk.ewm(x.down("close"), alpha, start=1, min_periods=RSI_WINDOW)
    return [gain / (gain + loss)]


def _ema(values: np.ndarray, span: int, start: int = 0) -> np.ndarray:
    return pk.ewm(values, 2.0 / (span + 1.0), start=start, min_periods=span)


def _macd(x: Inputs, d: int | None) -> list[np.ndarray]:
    fast, slow, signal_span = MACD_SPANS
    close = x["close"]
    line = _ema(close, fast) - _ema(close, slow)  # NaN before row slow - 1
    signal = _ema(line, signal_span, start=slow - 1)
    return [line / close, signal / close, (line - signal) / close]


def _boll(x: Inputs, d: int | None) -> list[np.ndarray]:
    close = x["close"]
    mean = pk.window_mean(close, BOLL_WINDOW)
    std = pk.window_std(close, BOLL_WINDOW, ddof=0)
    lower = mean - BOLL_WIDTH * std
    return [(close - lower) / (2 * BOLL_WIDTH * std)]


# ---------------------------------------------------------------------------------------------
# the registry, in Qlib's Alpha158 order (kbar, price, rolling), then the extras

_NO_EPS = "Qlib adds 1e-12 to the denominator; here a zero denominator gives NaN"
_DIFF = "NaN on the first row (no previous close), where Qlib compares with NaN as False"
_OHLC = ("open", "high", "low", "close")
_OHC = ("open", "high", "close")
_OLC = ("open", "low", "close")
_CV = ("close", "volume")


def _fixed(name, formula, needs, compute, note="") -> FeatureFamily:
    return FeatureFamily(
        name, formula, False, needs, compute, (name.lower(),), fixed_warmup=(0,), note=note
    )


def _rolling(name, formula, needs, compute, lag=0, note="") -> FeatureFamily:
    return FeatureFamily(name, formula, True, needs, compute, lag=lag, note=note)


_KBAR = [
    _fixed("KMID", "($close-$open)/$open", ("open", "close"), _kbar(_body, False)),
    _fixed(
        "KLEN",
        "($high-$low)/$open",
        ("open", "high", "low"),
        _kbar(lambda x: x["high"] - x["low"], False),
    ),
    _fixed("KMID2", "($close-$open)/($high-$low)", _OHLC, _kbar(_body, True), _NO_EPS),
    _fixed("KUP", "($high-Greater($open, $close))/$open", _OHC, _kbar(_upper_shadow, False)),
    _fixed(
        "KUP2",
        "($high-Greater($open, $close))/($high-$low)",
        _OHLC,
        _kbar(_upper_shadow, True),
        _NO_EPS,
    ),
    _fixed("KLOW", "(Less($open, $close)-$low)/$open", _OLC, _kbar(_lower_shadow, False)),
    _fixed(
        "KLOW2",
        "(Less($open, $close)-$low)/($high-$low)",
        _OHLC,
        _kbar(_lower_shadow, True),
        _NO_EPS,
    ),
    _fixed("KSFT", "(2*$close-$high-$low)/$open", _OHLC, _kbar(_shift, False)),
    _fixed("KSFT2", "(2*$close-$high-$low)/($high-$low)", _OHLC, _kbar(_shift, True), _NO_EPS),
]
_PRICE = [
    _fixed("OPEN0", "$open/$close", ("open", "close"), _over_close("open")),
    _fixed("HIGH0", "$high/$close", ("high", "close"), _over_close("high")),
    _fixed("LOW0", "$low/$close", ("low", "close"), _over_close("low")),
    _fixed(
        "VWAP0",
        "(($high+$low+$close)/3)/$close",
        ("high", "low", "close"),
        _vwap_proxy,
        "APPROXIMATION: Qlib uses $vwap/$close; our prices have no vwap column, so the "
        "typical price (H+L+C)/3 stands in for it",
    ),
]
_C = ("close",)
_HC = ("high", "close")
_LC = ("low", "close")
_HLC = ("high", "low", "close")
_ROLLING = [
    _rolling("ROC", "Ref($close, d)/$close", _C, _roc, lag=1),
    _rolling("MA", "Mean($close, d)/$close", _C, _per_close(pk.window_mean)),
    _rolling("STD", "Std($close, d)/$close", _C, _per_close(pk.window_std), note="ddof=1"),
    _rolling(
        "BETA",
        "Slope($close, d)/$close",
        _C,
        lambda x, d: [_regression(x, d).slope / x["close"]],
        note="least squares on x = 1..d",
    ),
    _rolling(
        "RSQR",
        "Rsquare($close, d)",
        _C,
        lambda x, d: [_regression(x, d).rsquare],
        note="NaN only for an exactly flat window (Qlib: rolling std within 2e-5 of 0)",
    ),
    _rolling(
        "RESI",
        "Resi($close, d)/$close",
        _C,
        lambda x, d: [_regression(x, d).resi / x["close"]],
        note="residual of the window's last row",
    ),
    _rolling("MAX", "Max($high, d)/$close", _HC, _per_close(pk.window_max, "high")),
    _rolling(
        "MIN",
        "Min($low, d)/$close",
        _LC,
        _per_close(pk.window_min, "low"),
        note="Qlib selects this family with the key 'LOW' in include/exclude",
    ),
    _rolling(
        "QTLU",
        "Quantile($close, d, 0.8)/$close",
        _C,
        _per_close(pk.window_quantile, "close", 0.8),
        note="linear interpolation",
    ),
    _rolling(
        "QTLD",
        "Quantile($close, d, 0.2)/$close",
        _C,
        _per_close(pk.window_quantile, "close", 0.2),
        note="linear interpolation",
    ),
    _rolling(
        "RANK",
        "Rank($close, d)",
        _C,
        lambda x, d: [x.rolled(pk.window_rank, "close", d)],
        note="percentile of $close in its window, ties averaged, in (0, 1] "
        "(= pandas rolling rank(pct=True))",
    ),
    _rolling("RSV", "($close-Min($low, d))/(Max($high, d)-Min($low, d))", _HLC, _rsv, note=_NO_EPS),
    _rolling(
        "IMAX",
        "IdxMax($high, d)/d",
        ("high",),
        lambda x, d: [x.rolled(pk.window_argmax, "high", d) / d],
        note="IdxMax is 1-based from the window's oldest row (d = today), first of ties; "
        "a window with a NaN gives NaN (Qlib: the first NaN's position)",
    ),
    _rolling(
        "IMIN",
        "IdxMin($low, d)/d",
        ("low",),
        lambda x, d: [x.rolled(pk.window_argmin, "low", d) / d],
        note="IdxMin is 1-based from the window's oldest row (d = today), first of ties; "
        "a window with a NaN gives NaN (Qlib: the first NaN's position)",
    ),
    _rolling("IMXD", "(IdxMax($high, d)-IdxMin($low, d))/d", ("high", "low"), _imxd),
    _rolling(
        "CORR",
        "Corr($close, Log($volume+1), d)",
        _CV,
        _corr,
        note="NaN only for an exactly flat side (Qlib: rolling std within 2e-5 of 0)",
    ),
    _rolling(
        "CORD",
        "Corr($close/Ref($close, 1), Log($volume/Ref($volume, 1)+1), d)",
        _CV,
        _cord,
        lag=1,
        note="NaN only for an exactly flat side; a zero previous volume makes the window NaN",
    ),
    _rolling(
        "CNTP", "Mean($close>Ref($close, 1), d)", _C, lambda x, d: [_count_up(x, d)], 1, _DIFF
    ),
    _rolling(
        "CNTN", "Mean($close<Ref($close, 1), d)", _C, lambda x, d: [_count_down(x, d)], 1, _DIFF
    ),
    _rolling(
        "CNTD",
        "Mean($close>Ref($close, 1), d)-Mean($close<Ref($close, 1), d)",
        _C,
        lambda x, d: [_count_up(x, d) - _count_down(x, d)],
        1,
        _DIFF,
    ),
    _rolling(
        "SUMP",
        "Sum(Greater($close-Ref($close, 1), 0), d)/Sum(Abs($close-Ref($close, 1)), d)",
        _C,
        _sum_ratio("close", "p"),
        1,
        _NO_EPS,
    ),
    _rolling(
        "SUMN",
        "Sum(Greater(Ref($close, 1)-$close, 0), d)/Sum(Abs($close-Ref($close, 1)), d)",
        _C,
        _sum_ratio("close", "n"),
        1,
        _NO_EPS,
    ),
    _rolling(
        "SUMD",
        "(Sum(Greater($close-Ref($close, 1), 0), d)-Sum(Greater(Ref($close, 1)-$close, 0), d))"
        "/Sum(Abs($close-Ref($close, 1)), d)",
        _C,
        _sum_ratio("close", "d"),
        1,
        _NO_EPS,
    ),
    _rolling(
        "VMA", "Mean($volume, d)/$volume", ("volume",), _per_volume(pk.window_mean), 0, _NO_EPS
    ),
    _rolling(
        "VSTD", "Std($volume, d)/$volume", ("volume",), _per_volume(pk.window_std), 0, _NO_EPS
    ),
    _rolling(
        "WVMA",
        "Std(Abs($close/Ref($close, 1)-1)*$volume, d)"
        "/Mean(Abs($close/Ref($close, 1)-1)*$volume, d)",
        _CV,
        _wvma,
        1,
        _NO_EPS,
    ),
    _rolling(
        "VSUMP",
        "Sum(Greater($volume-Ref($volume, 1), 0), d)/Sum(Abs($volume-Ref($volume, 1)), d)",
        ("volume",),
        _sum_ratio("volume", "p"),
        1,
        _NO_EPS,
    ),
    _rolling(
        "VSUMN",
        "Sum(Greater(Ref($volume, 1)-$volume, 0), d)/Sum(Abs($volume-Ref($volume, 1)), d)",
        ("volume",),
        _sum_ratio("volume", "n"),
        1,
        _NO_EPS,
    ),
    _rolling(
        "VSUMD",
        "(Sum(Greater($volume-Ref($volume, 1), 0), d)-Sum(Greater(Ref($volume, 1)-$volume, 0), d))"
        "/Sum(Abs($volume-Ref($volume, 1)), d)",
        ("volume",),
        _sum_ratio("volume", "d"),
        1,
        _NO_EPS,
    ),
]
_EXTRA = [
    FeatureFamily(
        "RSI",
        f"W = EMA_Wilder(x, {RSI_WINDOW}) (α = 1/{RSI_WINDOW}, seeded with the first value); "
        f"W(Greater(Δ$close, 0)) / (W(Greater(Δ$close, 0)) + W(Greater(-Δ$close, 0)))",
        False,
        _C,
        _rsi,
        (f"rsi{RSI_WINDOW}",),
        fixed_warmup=(RSI_WINDOW,),
        recursive=True,
        note="not in Alpha158; scaled to [0, 1], not 0..100; "
        "= pandas ewm(alpha=1/14, adjust=False, min_periods=14): seeded with the first value, "
        "not TA-Lib's 14-row SMA (they converge after ~150 rows); a flat stretch (0/0) is NaN",
    ),
    FeatureFamily(
        "MACD",
        "line = EMA($close, 12) - EMA($close, 26); signal = EMA(line, 9); "
        "macd = line/$close, macd_signal = signal/$close, macd_hist = (line - signal)/$close",
        False,
        _C,
        _macd,
        ("macd", "macd_signal", "macd_hist"),
        # the line needs 26 rows; the signal 9 rows of the line
        fixed_warmup=(MACD_SPANS[1] - 1, *[MACD_SPANS[1] + MACD_SPANS[2] - 2] * 2),
        recursive=True,
        note="not in Alpha158; EMA(x, n) = pandas ewm(span=n, adjust=False, min_periods=n), "
        "seeded with the first value (Qlib's EMA op uses adjust=True; TA-Lib an SMA seed); "
        "the signal's EMA starts on the line's first defined row",
    ),
    FeatureFamily(
        "BOLL",
        f"($close - (Mean($close, {BOLL_WINDOW}) - {BOLL_WIDTH:g}*Std0($close, {BOLL_WINDOW})))"
        f" / ({2 * BOLL_WIDTH:g}*Std0($close, {BOLL_WINDOW}))",
        False,
        _C,
        _boll,
        (f"boll_pos{BOLL_WINDOW}",),
        fixed_warmup=(BOLL_WINDOW - 1,),
        note="not in Alpha158; Bollinger %B (0 = lower band, 1 = upper band); "
        "Std0 is the population std (ddof=0), as Bollinger defines the bands",
    ),
]

FAMILIES: dict[str, FeatureFamily] = {f.name: f for f in [*_KBAR, *_PRICE, *_ROLLING, *_EXTRA]}
GROUPS: dict[str, list[str]] = {
    "KBAR": [f.name for f in _KBAR],
    "PRICE": [f.name for f in _PRICE],
    "ROLLING": [f.name for f in _ROLLING],
    "ALPHA158": [f.name for f in [*_KBAR, *_PRICE, *_ROLLING]],
    "EXTRA": [f.name for f in _EXTRA],
    "ALL": list(FAMILIES),
}


# ---------------------------------------------------------------------------------------------
# public API


def selected(families: list[str]) -> list[FeatureFamily]:
    """Families (group names such as "KBAR" or "ALL" expanded) in registry order, deduplicated.

    Registry order, not the caller's: the same selection always gives the same columns and hash.
    """
    wanted: set[str] = set()
    for name in families:
        key = name.upper()
        if key in GROUPS:
            wanted.update(GROUPS[key])
        elif key in FAMILIES:
            wanted.add(key)
        else:
            raise ValueError(
                f"unknown feature family {name!r}; known: {list(FAMILIES)}, groups {list(GROUPS)}"
            )
    return [f for f in FAMILIES.values() if f.name in wanted]


def _windows(windows: list[int]) -> list[int]:
    """Sorted, deduplicated windows; each ≥ 2 (a std or a slope needs two rows)."""
    clean = sorted({int(d) for d in windows})
    if any(d < 2 for d in clean) or any(int(d) != d for d in windows):
        raise ValueError(f"windows must be integers ≥ 2, got {windows}")
    return clean


def feature_names(families: list[str], windows: list[int]) -> list[str]:
    """Output feature columns, in registry order then ascending window."""
    clean = _windows(windows)
    return [name for family in selected(families) for name in family.columns(clean)]


def warmup_rows(families: list[str], windows: list[int]) -> dict[str, int]:
    """Column -> leading NaN rows of each symbol (the family's warm-up rule at that window)."""
    clean = _windows(windows)
    return {k: v for family in selected(families) for k, v in family.warmup(clean).items()}


def schema_hash(families: list[str], windows: list[int]) -> str:
    """sha256 of the output names, each family's formula and the windows.

    JSON with sorted keys, never Python's ``hash``: the same selection gives the same hex digest
    in every process and on every machine.
    """
    chosen, clean = selected(families), _windows(windows)
    payload = {
        "version": SCHEMA_VERSION,
        "names": [n for f in chosen for n in f.columns(clean)],
        "formulas": {f.name: f.formula for f in chosen},
        "windows": clean,
    }
    text = json.dumps(payload, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def compute_features(prices: pd.DataFrame, families: list[str], windows: list[int]) -> pd.DataFrame:
    """symbol, date + one float64 column per feature, sorted by (symbol, date), input rows kept.

    Pure: row t of a symbol uses that symbol's rows ≤ t only, and a symbol's values do not depend
    on which other symbols are in ``prices`` (bit for bit). ±inf results become NaN.
    """
    chosen, clean = selected(families), _windows(windows)
    needs = sorted({c for f in chosen for c in f.needs})
    panel = pk.to_panel(prices, needs)
    names, first_row = [], {}
    for family in chosen:
        first_row[family.name] = len(names)
        names += family.columns(clean)
    values = np.empty((len(names), len(panel.order)))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # Window families slab by slab of symbols: the temporaries of a slab stay in cache.
        # Recursive smoothers step through time, so they run once on the whole panel instead.
        slab = max(1, SLAB_CELLS // max(panel.n_sessions, 1))
        for first in range(0, panel.n_symbols, slab):
            stop = min(first + slab, panel.n_symbols)
            part = panel.symbols(first, stop)
            _compute_into(values, first_row, panel.rows_of(first, stop), part, chosen, clean, False)
        _compute_into(values, first_row, slice(None), panel, chosen, clean, True)
    out = pd.DataFrame(values.T, columns=names, copy=False)
    keys = prices[KEYS] if panel.is_sorted else prices[KEYS].iloc[panel.order]
    out.insert(0, "date", keys["date"].to_numpy())
    out.insert(0, "symbol", keys["symbol"].to_numpy())
    return out


def _compute_into(values, first_row, rows, panel, chosen, windows, recursive) -> None:
    """Write the features of ``chosen`` families with ``family.recursive == recursive``."""
    inputs = Inputs(panel)
    for family in chosen:
        if family.recursive != recursive:
            continue
        row = first_row[family.name]
        for d in windows if family.windowed else [None]:
            for array in family.compute(inputs, d):
                # Clean the destination, never ``array``: it may be a memoized result that
                # another family still reads.
                destination = values[row, rows]
                destination[...] = panel.to_long(array)
                destination[np.isinf(destination)] = np.nan
                row += 1


def cross_sectional_ranks(features: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """symbol, date + ``<col>_csrank``: per-date percentile rank across symbols, ties averaged.

    pandas ``rank(pct=True)`` within each date, NaN left NaN (and not counted), so ranks lie in
    (0, 1]. Each date is ranked on its own rows only: one date's rows give the same result as
    the whole table (the Spark engine ranks date by date). Keeps the input's row order and index.
    """
    ranks = features.groupby("date", sort=False)[columns].rank(pct=True, method="average")
    ranks.columns = [f"{c}{RANK_SUFFIX}" for c in columns]
    return pd.concat([features[KEYS], ranks.astype(np.float64)], axis=1)


def rank_columns(ranked: list[str], names: list[str]) -> list[str]:
    """``<col>_csrank`` for each ranked column, which must be one of the built features."""
    unknown = sorted(set(ranked) - set(names))
    if unknown:
        raise ValueError(
            "feature_store.features.cross_sectional_ranks names features not built "
            f"(not features of this selection): {unknown}"
        )
    return [f"{c}{RANK_SUFFIX}" for c in ranked]


def with_ranks(features: pd.DataFrame, ranked: list[str]) -> pd.DataFrame:
    """``features`` followed by the ``cross_sectional_ranks`` of ``ranked`` (both engines)."""
    if not ranked:
        return features
    ranks = cross_sectional_ranks(features, ranked).drop(columns=KEYS)
    return pd.concat([features, ranks], axis=1)


TABLE_HEADER = """\
<!-- GENERATED FILE, do not edit by hand. Regenerate from the registry with:
     .venv/bin/python -c "from stock_ml.pipelines.feature_store.registry import formula_table; \
print(formula_table(), end='')" > docs/features.md
     (tests/pipelines/feature_store/test_registry.py checks this file equals formula_table()) -->

# Feature formulas

One table, generated from `stock_ml.pipelines.feature_store.registry.FAMILIES`, the single
declaration the features are computed from. Notation is Qlib's expression language (`$close`,
`Ref`, `Mean`, ...); `d` is the window. Default windows: {windows}.

Semantics that hold for every row (and differ from Qlib's on purpose):

- windows are the previous `d` rows of the same symbol (never crossing symbols), and a window
  that is not yet full gives NaN (Qlib computes with `min_periods=1`);
- no `+1e-12` in denominators: a zero denominator (high == low, zero volume, a flat window)
  gives NaN, and so does any other ±inf result;
- a comparison or difference with a missing previous row is NaN (Qlib: False / NaN-skipped);
- float64 throughout (Qlib reads float32 and casts its output to float32: parity needs rtol ~1e-5).

Warm-up is the number of leading NaN rows of each symbol.
"""


def formula_table() -> str:
    """docs/features.md: the header above and one table row per family, in registry order."""
    lines = [
        TABLE_HEADER.format(windows=DEFAULT_WINDOWS),
        "| family | columns | formula | inputs | warm-up (NaN rows) | notes |",
        "|---|---|---|---|---|---|",
    ]
    for family in FAMILIES.values():
        if family.windowed:
            columns = f"`{family.name.lower()}<d>`"
            warmup = f"d - 1 + {family.lag}" if family.lag else "d - 1"
        else:
            columns = ", ".join(f"`{c}`" for c in family.outputs)
            warmup = ", ".join(str(w) for w in family.fixed_warmup)
        formula = family.formula.replace("|", "\\|")
        lines.append(
            f"| {family.name} | {columns} | `{formula}` | {', '.join(family.needs)} "
            f"| {warmup} | {family.note} |"
        )
    return "\n".join(lines) + "\n"
