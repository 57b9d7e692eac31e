"""Rolling kernels on a padded symbols × sessions panel, vectorised over all symbols at once.

A panel holds one float64 array of shape (n_symbols, n_sessions) per input column: each symbol's
rows left-aligned in date order (column j = the symbol's j-th row), NaN padding on the right. So
column 0 is every symbol's first row, a window of d columns ending at column t is exactly Qlib's
"previous d rows of that symbol", and no kernel can mix two symbols (they are different rows).

Every kernel is causal and row-local: output [s, t] depends on input [s, 0..t] only, and is
computed by the same operations whatever the other rows (symbols) or the padding width are. That
is what makes one symbol alone bit-identical to the same symbol within many (the Spark engine maps
one symbol at a time, the pandas engine runs the whole table).

Rolling sums use *blocked* prefix sums: the time axis is cut into blocks of d columns and each
window of d columns is "the suffix of one block + the prefix of the next". Sums therefore never
run over more than 2d values, so their rounding error stays that of a d-term sum however long the
history, and a NaN/inf input only spoils the windows that contain it (a plain cumulative sum would
carry it, or its rounding, to every later row). Second moments (std, corr, slope, R²) are centred
per block and the two parts combined with Chan et al.'s pairwise update, so they do not suffer the
Σx² − (Σx)²/n cancellation on prices far from zero.

Warm-up: a window that is not full (fewer than d rows of the symbol so far) gives NaN, and so does
a window that contains a NaN input (e.g. the first row of a one-row difference).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

KEYS = ["symbol", "date"]


# ---------------------------------------------------------------------------------------------
# long frame <-> panel


@dataclass(frozen=True)
class Panel:
    """Input columns as (n_symbols, n_sessions) arrays, plus how to map back to long rows.

    ``order`` sorts the input frame by (symbol, date); ``flat`` is, for each sorted row, its
    index in a raveled panel array (symbol code * n_sessions + row within symbol); ``bounds[s]``
    is the first sorted row of symbol s (``bounds[-1]`` = number of rows).
    """

    columns: dict[str, np.ndarray]
    order: np.ndarray
    flat: np.ndarray
    bounds: np.ndarray
    n_symbols: int
    n_sessions: int

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    @property
    def is_sorted(self) -> bool:
        """The input rows were already in (symbol, date) order."""
        return bool(
            len(self.order) == 0
            or (self.order[-1] == len(self.order) - 1 and (np.diff(self.order) == 1).all())
        )

    @property
    def dense(self) -> bool:
        """Every symbol has n_sessions rows: the panel is the long rows, reshaped (no padding)."""
        return len(self.flat) == self.n_symbols * self.n_sessions

    def to_long(self, values: np.ndarray) -> np.ndarray:
        """Panel array -> values of the (symbol, date)-sorted long rows."""
        return values.ravel() if self.dense else values.ravel()[self.flat]

    def rows_of(self, first: int, stop: int) -> slice:
        """The sorted long rows of symbols first..stop-1 (contiguous: sorted by symbol)."""
        return slice(int(self.bounds[first]), int(self.bounds[stop]))

    def symbols(self, first: int, stop: int) -> Panel:
        """The sub-panel of symbols first..stop-1 (views; ``to_long`` gives their rows only).

        Kernels are row-local, so computing on a slab of symbols gives the same bits as on all.
        """
        rows = self.rows_of(first, stop)
        return Panel(
            {name: values[first:stop] for name, values in self.columns.items()},
            self.order[rows],
            self.flat[rows] - first * self.n_sessions,
            self.bounds[first : stop + 1] - self.bounds[first],
            stop - first,
            self.n_sessions,
        )


def _sort_order(codes: np.ndarray, dates: np.ndarray) -> np.ndarray:
    """Permutation sorting rows by (symbol code, date); identity (no sort) if already sorted."""
    if len(codes) > 1:
        same = codes[1:] == codes[:-1]
        in_order = (codes[1:] >= codes[:-1]).all() and (dates[1:][same] > dates[:-1][same]).all()
        if in_order:
            return np.arange(len(codes))
    return np.lexsort((dates, codes))


def to_panel(prices: pd.DataFrame, needs: list[str]) -> Panel:
    """Pivot the long frame's ``needs`` columns into a padded panel by numpy indexing.

    Raises on a repeated (symbol, date): a row-based window would silently count it twice.
    """
    codes, _ = pd.factorize(prices["symbol"].to_numpy(), sort=True)
    dates = prices["date"].to_numpy()
    order = _sort_order(codes, dates)
    codes, dates = codes[order], dates[order]
    same = codes[1:] == codes[:-1]
    if (dates[1:][same] == dates[:-1][same]).any():
        raise ValueError("compute_features: repeated (symbol, date) rows in the input")
    counts = np.bincount(codes) if len(codes) else np.zeros(0, dtype=np.int64)
    bounds = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    position = np.arange(len(codes), dtype=np.int64) - bounds[codes]
    n_symbols, n_sessions = len(counts), int(counts.max()) if len(counts) else 0
    flat = codes.astype(np.int64) * n_sessions + position
    is_sorted = bool((order == np.arange(len(order))).all())
    dense = len(flat) == n_symbols * n_sessions
    columns = {}
    for name in needs:
        values = prices[name].to_numpy(dtype=np.float64)
        values = values if is_sorted else values[order]
        if dense:  # no padding: the sorted rows are the panel
            panel = np.array(values, dtype=np.float64, copy=True)
        else:
            panel = np.full(n_symbols * n_sessions, np.nan)
            panel[flat] = values
        columns[name] = panel.reshape(n_symbols, n_sessions)
    return Panel(columns, order, flat, bounds, n_symbols, n_sessions)


# ---------------------------------------------------------------------------------------------
# elementwise helpers


def ref(x: np.ndarray, lag: int) -> np.ndarray:
    """Qlib ``Ref(x, lag)``: the value ``lag`` rows earlier in the same symbol; NaN before."""
    out = np.full_like(x, np.nan)
    if lag < x.shape[1]:
        out[:, lag:] = x[:, : x.shape[1] - lag]
    return out


def finite_or_nan(x: np.ndarray) -> np.ndarray:
    """±inf (a division by zero) becomes NaN, in place: undefined, not huge."""
    x[np.isinf(x)] = np.nan
    return x


# ---------------------------------------------------------------------------------------------
# blocked window scans: sums, co-moments, max/min
#
# Layout: an (S, T) panel is cut into blocks of d columns and stored as B[r, s, k] = x[s, k*d + r]
# (position in block, symbol, block), NaN-padded to whole blocks. Scans (cumulative sum / max)
# then run along axis 0: d vectorised steps over contiguous (S, n_blocks) slabs, whatever d is.
# The window ending at column t = k*d + r is the suffix of block k-1 from position r+1 plus the
# prefix of block k up to r (just the prefix when r = d-1), so every window result is one
# combination of prefix[r, :, k] with suffix[r+1, :, k-1]: the van Herk / Gil-Werman scheme.


def _to_blocks(x: np.ndarray, d: int) -> np.ndarray:
    """(S, T) -> (d, S, n_blocks) with B[r, s, k] = x[s, k*d + r]; NaN past the last column."""
    n_symbols, n_sessions = x.shape
    full, rest = divmod(n_sessions, d)
    blocks = np.full((d, n_symbols, full + (rest > 0)), np.nan)
    by_symbol = blocks.transpose(1, 2, 0)  # (S, n_blocks, d) view
    by_symbol[:, :full] = x[:, : full * d].reshape(n_symbols, full, d)
    if rest:
        by_symbol[:, full, :rest] = x[:, full * d :]
    return blocks


def _from_blocks(blocks: np.ndarray, n_sessions: int) -> np.ndarray:
    """Inverse of ``_to_blocks``: (d, S, n_blocks) -> contiguous (S, T)."""
    d, n_symbols, n_blocks = blocks.shape
    by_symbol = blocks.transpose(1, 2, 0).reshape(n_symbols, n_blocks * d)
    return np.ascontiguousarray(by_symbol[:, :n_sessions])


def _scans(blocks: np.ndarray, op) -> tuple[np.ndarray, np.ndarray]:
    """Within-block prefix and suffix scans of a binary ufunc (np.add, np.maximum, ...).

    A loop of d whole-slab ufunc calls: ~5x faster than ``op.accumulate(axis=0)``, which walks
    the array element by element along the short axis.
    """
    d = blocks.shape[0]
    prefix, suffix = np.empty(blocks.shape), np.empty(blocks.shape)
    prefix[0], suffix[d - 1] = blocks[0], blocks[d - 1]
    for r in range(1, d):
        op(prefix[r - 1], blocks[r], out=prefix[r])
        op(suffix[d - r], blocks[d - r - 1], out=suffix[d - r - 1])
    return prefix, suffix


def _windows_of(prefix: np.ndarray, suffix: np.ndarray, combine) -> np.ndarray:
    """Window results in block layout: combine(prefix part, suffix part) for windows that span
    two blocks, the prefix alone for windows that are exactly one block; NaN before column d-1."""
    d = prefix.shape[0]
    out = np.empty(prefix.shape)
    out[d - 1] = prefix[d - 1]
    out[: d - 1, :, 0] = np.nan  # the first block's partial windows: warm-up
    out[: d - 1, :, 1:] = combine(prefix[: d - 1, :, 1:], suffix[1:, :, :-1])
    return out


def window_sum(x: np.ndarray, d: int) -> np.ndarray:
    """Rolling sum over the last d rows (NaN until d rows, NaN if the window has a NaN)."""
    prefix, suffix = _scans(_to_blocks(x, d), np.add)
    return _from_blocks(_windows_of(prefix, suffix, np.add), x.shape[1])


def window_mean(x: np.ndarray, d: int) -> np.ndarray:
    return window_sum(x, d) / d


def window_max(x: np.ndarray, d: int) -> np.ndarray:
    """Rolling max (NaN if the window has a NaN): 3 comparisons per value whatever d is."""
    prefix, suffix = _scans(_to_blocks(x, d), np.maximum)
    return _from_blocks(_windows_of(prefix, suffix, np.maximum), x.shape[1])


def window_min(x: np.ndarray, d: int) -> np.ndarray:
    """Rolling min (NaN if the window has a NaN): 3 comparisons per value whatever d is."""
    prefix, suffix = _scans(_to_blocks(x, d), np.minimum)
    return _from_blocks(_windows_of(prefix, suffix, np.minimum), x.shape[1])


@dataclass(frozen=True)
class _Centred:
    """A series in block layout minus one centre per block, with that centre per block.

    Centre = the block's first value if finite, else its last, else 0. Centring is exact algebra
    (the results do not depend on it); it only keeps sums of squares small, so second moments do
    not lose digits to Σx² − (Σx)²/n. The fallback to the block's last value never leaks the
    future into a defined result: a window that uses block k as its prefix part contains the
    block's first value, so if that is NaN the window is NaN anyway.
    """

    values: np.ndarray  # (d, S, n_blocks) or broadcastable
    centres: np.ndarray  # (S, n_blocks) or broadcastable


def _centred(x: np.ndarray, d: int) -> _Centred:
    blocks = _to_blocks(x, d)
    first, last = blocks[0], blocks[-1]
    centres = np.where(np.isfinite(first), first, np.where(np.isfinite(last), last, 0.0))
    blocks -= centres
    return _Centred(blocks, centres)


def _time_centred(n_blocks: int, d: int) -> _Centred:
    """The row index t = k*d + r as a centred series: r, exactly, around centres k*d."""
    return _Centred(
        np.broadcast_to(np.arange(d, dtype=np.float64).reshape(d, 1, 1), (d, 1, n_blocks)),
        (np.arange(n_blocks, dtype=np.float64) * d)[None, :],
    )


class _Sums:
    """Blocked part sums of one centred series, and what every co-moment with it needs.

    For the windows spanning two blocks: ``s1``/``s2`` are the sums of the suffix part (n1 rows
    of block k-1) and of the prefix part (n2 rows of block k), ``u1``/``u2`` the part means
    around their block centres, ``gap`` the difference of the two part means (centres included).
    ``full`` is the sum of a whole block (the windows that are exactly one block).
    """

    def __init__(self, series: _Centred, d: int):
        self.series, self.d = series, d
        self.n2 = np.arange(1, d, dtype=np.float64).reshape(d - 1, 1, 1)
        self.n1 = d - self.n2
        prefix, suffix = _scans(series.values, np.add)
        self.full = prefix[d - 1]
        self.s1, self.s2 = suffix[1:, :, :-1], prefix[: d - 1, :, 1:]
        self.u1, self.u2 = self.s1 / self.n1, self.s2 / self.n2
        centres = series.centres
        self.gap = (centres[:, :-1] - centres[:, 1:]) + self.u1
        self.gap -= self.u2

    def mean(self) -> np.ndarray:
        """Window means in block layout."""
        d, centres = self.d, self.series.centres
        out = np.empty((d, *self.full.shape))
        out[d - 1] = centres + self.full / d
        out[: d - 1, :, 0] = np.nan
        body = out[: d - 1, :, 1:]
        np.multiply(self.n1, centres[:, :-1] - centres[:, 1:], out=body)
        body += self.s1
        body += self.s2
        body /= d
        body += centres[:, 1:]
        return out


def _comoment(a: _Sums, b: _Sums) -> np.ndarray:
    """Σ(a-ā)(b-b̄) per window in block layout: the two parts' co-moments merged with the
    pairwise update of Chan, Golub & LeVeque, C = C1 + C2 + (ā1-ā2)(b̄1-b̄2)·n1·n2/d, where
    Ci = Σ_part (a-c_a)(b-c_b) − s_a·s_b/n (sums around the part's block centres)."""
    d = a.d
    prefix, suffix = _scans(a.series.values * b.series.values, np.add)
    out = np.empty(prefix.shape)
    out[d - 1] = prefix[d - 1] - a.full * b.full / d
    out[: d - 1, :, 0] = np.nan
    body = out[: d - 1, :, 1:]
    np.multiply(a.gap, b.gap, out=body)
    body *= a.n1 * a.n2 / d
    body += suffix[1:, :, :-1]
    body += prefix[: d - 1, :, 1:]
    body -= a.s1 * b.u1
    body -= a.s2 * b.u2
    return out


def window_std(x: np.ndarray, d: int, ddof: int = 1) -> np.ndarray:
    """Rolling standard deviation (ddof=1 as pandas and Qlib's ``Std``)."""
    a = _Sums(_centred(x, d), d)
    m2 = _from_blocks(_comoment(a, a), x.shape[1])
    np.maximum(m2, 0.0, out=m2)
    m2 /= d - ddof
    return np.sqrt(m2, out=m2)


def window_corr(x: np.ndarray, y: np.ndarray, d: int) -> np.ndarray:
    """Rolling Pearson correlation; NaN where either side is constant over the window."""
    a, b = _Sums(_centred(x, d), d), _Sums(_centred(y, d), d)
    caa, cbb = _comoment(a, a), _comoment(b, b)
    np.maximum(caa, 0.0, out=caa)
    np.maximum(cbb, 0.0, out=cbb)
    caa *= cbb
    np.sqrt(caa, out=caa)
    return _from_blocks(_comoment(a, b) / caa, x.shape[1])


@dataclass(frozen=True)
class Regression:
    """Least squares of y on the row index over each window: Qlib's Slope, Rsquare, Resi."""

    slope: np.ndarray
    rsquare: np.ndarray
    resi: np.ndarray


def window_regression(y: np.ndarray, d: int) -> Regression:
    """Regress y on x = 1..d within each window (the window's last row has x = d).

    Σ(x-x̄)² = d(d²-1)/12 exactly; Resi is the last row's residual, y_t − (ȳ + slope·(d−1)/2).
    """
    n_sessions = y.shape[1]
    b = _Sums(_centred(y, d), d)
    a = _Sums(_time_centred(b.full.shape[1], d), d)
    cty, cyy = _comoment(a, b), _comoment(b, b)
    ctt = d * (d * d - 1) / 12.0
    slope = _from_blocks(cty / ctt, n_sessions)
    cty *= cty
    cyy *= ctt
    rsquare = _from_blocks(cty / cyy, n_sessions)
    resi = y - _from_blocks(b.mean(), n_sessions)
    resi -= slope * ((d - 1) / 2.0)
    return Regression(slope, rsquare, resi)


# ---------------------------------------------------------------------------------------------
# order statistics on sliding windows

# Reductions over a sliding-window view may copy it (argmax, partition, comparisons): d values
# per cell. Symbols are processed in row chunks of about this many window cells to bound memory;
# rows are independent, so chunking changes no value.
_CHUNK_CELLS = 4_000_000


def _windowed(x: np.ndarray, d: int, reduce) -> np.ndarray:
    """Apply ``reduce((rows, T-d+1, d) window view) -> (rows, T-d+1)`` by row chunks.

    Windows holding a NaN give NaN; windows not yet full (t < d-1) give NaN.
    """
    out = np.full_like(x, np.nan)
    n_symbols, n_sessions = x.shape
    if n_sessions < d:
        return out
    has_nan = window_sum(np.isnan(x).astype(np.float64), d) > 0
    rows = max(1, _CHUNK_CELLS // ((n_sessions - d + 1) * d))
    for first in range(0, n_symbols, rows):
        chunk = x[first : first + rows]
        out[first : first + rows, d - 1 :] = reduce(sliding_window_view(chunk, d, axis=1))
    out[has_nan] = np.nan
    return out


def window_argmax(x: np.ndarray, d: int) -> np.ndarray:
    """Qlib ``IdxMax``: 1-based position of the window's maximum, oldest row = 1, first of ties."""
    return _windowed(x, d, lambda w: np.argmax(w, axis=2) + 1.0)


def window_argmin(x: np.ndarray, d: int) -> np.ndarray:
    """Qlib ``IdxMin``: 1-based position of the window's minimum, oldest row = 1, first of ties."""
    return _windowed(x, d, lambda w: np.argmin(w, axis=2) + 1.0)


def window_quantile(x: np.ndarray, d: int, q: float) -> np.ndarray:
    """Rolling quantile with linear interpolation (pandas' and numpy's default)."""
    position = q * (d - 1)
    below = int(np.floor(position))
    fraction = position - below
    kth = [below, min(below + 1, d - 1)]

    def quantile(windows: np.ndarray) -> np.ndarray:
        parted = np.partition(windows, kth, axis=2)
        low, high = parted[:, :, kth[0]], parted[:, :, kth[1]]
        return low + (high - low) * fraction

    return _windowed(x, d, quantile)


def window_rank(x: np.ndarray, d: int) -> np.ndarray:
    """Percentile rank of the window's last value within the window, ties averaged, in (0, 1].

    (#less + (#equal + 1) / 2) / d: pandas ``rolling(d).rank(pct=True)``, and
    ``scipy.stats.percentileofscore(window, last) / 100``.
    """

    def rank(windows: np.ndarray) -> np.ndarray:
        last = windows[:, :, -1:]
        less = (windows < last).sum(axis=2)
        equal = (windows == last).sum(axis=2)
        return (less + (equal + 1) / 2.0) / d

    return _windowed(x, d, rank)


# ---------------------------------------------------------------------------------------------
# recursive smoothers


def ewm(x: np.ndarray, alpha: float, start: int, min_periods: int) -> np.ndarray:
    """pandas ``ewm(alpha=alpha, adjust=False, min_periods=min_periods).mean()`` along rows.

    The recursion y_t = α·x_t + (1-α)·y_{t-1}, seeded with y = x at column ``start`` (the first
    defined input; the same column for every symbol since rows are left-aligned), steps through
    time once for all symbols: each step is one vector operation over the symbols. (A Python
    loop over sessions, not symbols: ~3.5k steps for 14 years; scipy.signal.lfilter would do the
    same but costs ~2 s to import in every worker process.) NaN before start + min_periods - 1.
    """
    out = np.full_like(x, np.nan)
    n_sessions = x.shape[1]
    if n_sessions <= start:
        return out
    columns = np.ascontiguousarray(x.T)  # one contiguous row per session
    smoothed = out.T.copy()
    level = columns[start].copy()
    smoothed[start] = level
    keep = 1.0 - alpha
    for t in range(start + 1, n_sessions):
        level = alpha * columns[t] + keep * level
        smoothed[t] = level
    out[:, start:] = smoothed[start:].T
    out[:, : start + min_periods - 1] = np.nan
    return out
