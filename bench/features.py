"""Feature registry throughput: vectorised panel kernels vs plain pandas groupby-rolling.

What it measures, on the seeded synthetic generator (252 XWAR sessions a year), pinned to ONE
core (OMP/OPENBLAS/MKL_NUM_THREADS=1 set before numpy is imported, and sched_setaffinity to the
first allowed CPU), so figures compare with Qlib's single-CPU data-server benchmark:

(a) Qlib's task shape: 14 features on 800 symbols × 14 years (3,528 sessions, 2.8 M rows).
    The 14 = families ROC, MA, STD, MAX, MIN, CORR, RSQR × windows 5, 20 (Qlib's paper does not
    list its 14; these are its Ref/Mean/Std/Max/Min operators plus the two costliest ones, Corr
    and Rsquare, which Qlib's own Alpha158 FilterCol subsets lean on). Side by side: our
    ``compute_features`` and the same 14 the plain pandas way (groupby + rolling; a per-symbol
    loop for the two-series ones, pandas has no grouped pairwise rolling corr), and the ratio.
(b) the full registry (Alpha158 + RSI, MACD, Bollinger; default windows) on the same data.
(c) scaling of the 14 at ×1, ×4, ×16 symbols of a 50 × 14-year base (800 symbols at ×16):
    seconds, rows/s, time ratio vs ×1, and peak memory.

Times are the best of ``--repeat`` runs. Memory: "peak MiB" is the tracemalloc peak of one extra,
untimed run of that step (numpy reports its buffers to tracemalloc; the input frame is allocated
before the trace starts, so it is the step's own working memory); "max RSS" is
``getrusage(RUSAGE_SELF).ru_maxrss``, the process peak so far (cumulative over all steps before).

It prints figures; it asserts nothing about speed. Run from the project root:

    .venv/bin/python bench/features.py               # (a), (b), (c)
    .venv/bin/python bench/features.py --quick       # small smoke run (seconds)
    .venv/bin/python bench/features.py --profile     # cProfile of (a), top functions
    .venv/bin/python bench/features.py --engine numpy --engine spark   # once "spark" is added

Engines: ``ENGINES`` maps a name to ``run(prices, families, windows) -> DataFrame``. The Spark
engine registers itself there (see ``register_spark``); every step runs for each selected engine.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

import argparse  # noqa: E402
import cProfile  # noqa: E402
import gc  # noqa: E402
import io  # noqa: E402
import pstats  # noqa: E402
import resource  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from stock_ml.pipelines.feature_store.registry import (  # noqa: E402
    DEFAULT_WINDOWS,
    compute_features,
    feature_names,
)
from stock_ml.synthetic import generate_ohlcv  # noqa: E402

SESSIONS_PER_YEAR = 252
SEED = 7
START = "2007-01-02"
QLIB14_FAMILIES = ["ROC", "MA", "STD", "MAX", "MIN", "CORR", "RSQR"]
QLIB14_WINDOWS = [5, 20]
FULL = (["ALL"], DEFAULT_WINDOWS)

Engine = Callable[[pd.DataFrame, list[str], list[int]], pd.DataFrame]
ENGINES: dict[str, Engine] = {"numpy": compute_features}


def register_spark() -> None:
    """Put ``ENGINES["spark"]`` (if pyspark is installed): pandas in, pandas out, via Spark.

    Timed end to end — createDataFrame, applyInPandas per symbol, the sort, toPandas — since
    that is what switching engines costs a caller holding pandas. The local session starts on
    the engine's first call (10-20 s of JVM start inside that call: best-of ``--repeat`` ≥ 2
    leaves it out). The process is pinned to one CPU above and the JVM and its Python workers
    inherit that, hence local[1]. Memory columns count the driver's Python heap only, not the
    JVM's or the workers'. Big sizes need the driver memory below (toPandas collects there).
    """
    import importlib.util

    if importlib.util.find_spec("pyspark") is None:
        return
    session = []

    def spark_engine(prices: pd.DataFrame, families: list[str], windows: list[int]):
        from stock_ml.pipelines.feature_store.spark_engine import build_features_spark
        from stock_ml.spark import start_session

        if not session:
            conf = {
                "spark.master": "local[1]",
                "spark.driver.memory": "8g",
                "spark.driver.maxResultSize": "0",
                "spark.sql.shuffle.partitions": 2,
            }
            scratch = Path(tempfile.mkdtemp(prefix="bench-spark-"))
            session.append(start_session(conf, scratch, "bench-features", log_level="ERROR"))
        table = build_features_spark(session[0].createDataFrame(prices), families, windows, [])
        return table.toPandas()

    ENGINES["spark"] = spark_engine


@dataclass
class Step:
    label: str
    engine: str
    rows: int
    features: int
    seconds: float
    peak_mib: float = float("nan")
    max_rss_mib: float = float("nan")

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else float("nan")


def prices_for(n_symbols: int, years: int) -> pd.DataFrame:
    symbols = [f"S{i:04d}" for i in range(n_symbols)]
    return generate_ohlcv(symbols, START, years * SESSIONS_PER_YEAR, SEED)


def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def best_seconds(run: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
        del result
    return best


def traced_peak_mib(run: Callable[[], object]) -> float:
    gc.collect()
    tracemalloc.start()
    result = run()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del result
    return peak / 2**20


def pandas_qlib14(prices: pd.DataFrame, windows: list[int]) -> pd.DataFrame:
    """The 14 the plain pandas way: sort, groupby + rolling(d, min_periods=d) per feature."""
    p = prices.sort_values(["symbol", "date"]).reset_index(drop=True)
    by_symbol = p.groupby("symbol", sort=False)
    close = p["close"]
    log_volume = np.log(p["volume"] + 1.0)
    row = by_symbol.cumcount().astype(np.float64)
    cols: dict[str, dict[int, pd.Series]] = {}

    def grouped(series: pd.Series, d: int, how: str) -> pd.Series:
        rolling = series.groupby(p["symbol"], sort=False).rolling(d, min_periods=d)
        return getattr(rolling, how)().reset_index(level=0, drop=True)

    def per_symbol_corr(left: pd.Series, right: pd.Series, d: int) -> pd.Series:
        parts = [
            left.iloc[rows].rolling(d, min_periods=d).corr(right.iloc[rows])
            for rows in by_symbol.indices.values()
        ]
        return pd.concat(parts).sort_index()

    for d in windows:
        cols.setdefault("roc", {})[d] = by_symbol["close"].shift(d) / close
        cols.setdefault("ma", {})[d] = grouped(close, d, "mean") / close
        cols.setdefault("std", {})[d] = grouped(close, d, "std") / close
        cols.setdefault("max", {})[d] = grouped(p["high"], d, "max") / close
        cols.setdefault("min", {})[d] = grouped(p["low"], d, "min") / close
        cols.setdefault("corr", {})[d] = per_symbol_corr(close, log_volume, d)
        cols.setdefault("rsqr", {})[d] = per_symbol_corr(close, row, d) ** 2
    out = {f"{name}{d}": series for name, by_d in cols.items() for d, series in by_d.items()}
    return pd.concat([p[["symbol", "date"]], pd.DataFrame(out)], axis=1)


def step(label, engine, run, rows, features, repeat, memory=True) -> Step:
    seconds = best_seconds(run, repeat)
    peak = traced_peak_mib(run) if memory else float("nan")
    result = Step(label, engine, rows, features, seconds, peak, max_rss_mib())
    print(
        f"{label:<34} {engine:<7} {rows:>10,} rows {features:>4} feat  {seconds:8.3f} s  "
        f"{result.rows_per_s:>12,.0f} rows/s  peak {peak:8,.0f} MiB  maxRSS "
        f"{result.max_rss_mib:8,.0f} MiB",
        flush=True,
    )
    return result


def section_a(prices: pd.DataFrame, engines: list[str], repeat: int) -> list[Step]:
    print(f"\n(a) Qlib task shape: {QLIB14_FAMILIES} x {QLIB14_WINDOWS} = 14 features")
    rows = len(prices)
    steps = [
        step(
            "(a) 14 features",
            name,
            lambda name=name: ENGINES[name](prices, QLIB14_FAMILIES, QLIB14_WINDOWS),
            rows,
            14,
            repeat,
        )
        for name in engines
    ]
    baseline = step(
        "(a) 14 features",
        "pandas",
        lambda: pandas_qlib14(prices, QLIB14_WINDOWS),
        rows,
        14,
        max(1, repeat // 2),
        memory=False,
    )
    ours = compute_features(prices, QLIB14_FAMILIES, QLIB14_WINDOWS)
    theirs = pandas_qlib14(prices, QLIB14_WINDOWS)
    names = feature_names(QLIB14_FAMILIES, QLIB14_WINDOWS)
    a, b = ours[names].to_numpy(), theirs[names].to_numpy()
    both = ~np.isnan(a) & ~np.isnan(b)
    worst = np.max(np.abs(a[both] - b[both]) / np.maximum(np.abs(b[both]), 1e-4))
    print(
        f"    same NaN cells: {np.array_equal(np.isnan(a), np.isnan(b))}; "
        f"max relative difference ours vs pandas: {worst:.1e}"
    )
    print("\n| engine | seconds (best) | rows/s | vs pandas |")
    print("|---|---:|---:|---:|")
    for s in [*steps, baseline]:
        print(
            f"| {s.engine} | {s.seconds:.3f} | {s.rows_per_s:,.0f} "
            f"| {baseline.seconds / s.seconds:.1f}x faster |"
        )
    return [*steps, baseline]


def section_b(prices: pd.DataFrame, engines: list[str], repeat: int) -> list[Step]:
    n = len(feature_names(*FULL))
    print(f"\n(b) full registry: {n} features (ALL families x {DEFAULT_WINDOWS})")
    return [
        step(
            "(b) full set",
            name,
            lambda name=name: ENGINES[name](prices, *FULL),
            len(prices),
            n,
            repeat,
        )
        for name in engines
    ]


def section_c(base_symbols: int, years: int, engines: list[str], repeat: int) -> list[Step]:
    print(f"\n(c) scaling of the 14 features: base {base_symbols} symbols x {years} years")
    steps = []
    for name in engines:
        first = None
        for factor in (1, 4, 16):
            prices = prices_for(base_symbols * factor, years)
            s = step(
                f"(c) x{factor:<2} = {base_symbols * factor} symbols",
                name,
                lambda prices=prices, name=name: ENGINES[name](
                    prices, QLIB14_FAMILIES, QLIB14_WINDOWS
                ),
                len(prices),
                14,
                repeat,
            )
            first = first or s
            print(f"{'':>34} time ratio vs x1: {s.seconds / first.seconds:5.2f}")
            steps.append(s)
            del prices
    return steps


def profile(prices: pd.DataFrame, top: int = 20) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    compute_features(prices, QLIB14_FAMILIES, QLIB14_WINDOWS)
    profiler.disable()
    for sort in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(sort).print_stats(top)
        print(f"\n=== cProfile (a), top {top} by {sort} ===\n{out.getvalue()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per step; best is reported")
    parser.add_argument(
        "--engine",
        action="append",
        help=f"engine(s) to run (repeatable); known: {sorted(ENGINES)}; default numpy",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile (a) instead of timing")
    parser.add_argument(
        "--sections",
        default="abc",
        help="which of (a) Qlib shape, (b) full set, (c) scaling to run, e.g. 'ac'; default abc",
    )
    args = parser.parse_args()
    register_spark()
    engines = args.engine or ["numpy"]
    unknown = sorted(set(engines) - set(ENGINES))
    if unknown:
        parser.error(f"unknown engine(s) {unknown}; known: {sorted(ENGINES)}")

    symbols, years, base = (40, 2, 5) if args.quick else (800, 14, 50)
    print(
        f"CPU affinity {sorted(os.sched_getaffinity(0))}, numpy {np.__version__}, "
        f"pandas {pd.__version__}; data {symbols} symbols x {years} years"
    )
    prices = prices_for(symbols, years)
    compute_features(prices.head(500), ["ALL"], DEFAULT_WINDOWS)  # warm-up: imports, caches
    if args.profile:
        profile(prices)
        return
    wall = time.perf_counter()
    if "a" in args.sections:
        section_a(prices, engines, args.repeat)
    if "b" in args.sections:
        section_b(prices, engines, max(1, args.repeat // 2))
    del prices
    if "c" in args.sections:
        section_c(base, years, engines, args.repeat)
    print(f"\nWall time: {time.perf_counter() - wall:.1f}s")


if __name__ == "__main__":
    main()
