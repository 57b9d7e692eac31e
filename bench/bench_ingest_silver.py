"""Throughput of ingest (bronze) + silver on the seeded synthetic generator.

What it measures, for each size ``SYMBOLSxYEARS`` (YEARS * 252 sessions of the XWAR calendar):

- ``ingest``: ``extract_prices`` with the synthetic source (generate prices + render them as text
  + lineage columns), i.e. bronze;
- ``validate``: ``validate_prices`` (parse, pandera checks, dedup, quarantine, accounting);
- ``health``: ``data_health`` (per-symbol completeness and freshness);
- rows/s of the three steps together, and the process max RSS after the size.

With ``--defects N`` each size also runs a second variant, side by side with the clean one: N of
every defect kind of ``stock_ml.synthetic.inject_defects`` per 100 symbols, so the quarantine path
(failure cases, reason ranking) is measured too.

Max RSS comes from ``resource.getrusage(RUSAGE_SELF).ru_maxrss``: it is the peak of the whole
process so far (cumulative over the sizes run before), not the peak of one size. Run the sizes in
increasing order to read it as "peak up to this size". Times are the best of ``--repeat`` runs.
A tiny warm-up run first keeps one-off imports (pandera, exchange-calendars) out of the figures.

It prints figures; it asserts nothing about speed. The only check is the row accounting identity
(bronze rows == silver + quarantine + exact duplicates), printed per size.

Run from the project root:

    .venv/bin/python bench/bench_ingest_silver.py
    .venv/bin/python bench/bench_ingest_silver.py --sizes 50x2,500x10 --repeat 3
    .venv/bin/python bench/bench_ingest_silver.py --sizes 500x10 --defects 20    # clean vs defects
    .venv/bin/python bench/bench_ingest_silver.py --sizes 50x2 --profile   # cProfile top functions
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import resource
import time
from dataclasses import dataclass

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")

from stock_ml.pipelines.ingest.nodes import extract_prices  # noqa: E402
from stock_ml.pipelines.silver.nodes import data_health, validate_prices  # noqa: E402
from stock_ml.synthetic import DEFECTS  # noqa: E402

SESSIONS_PER_YEAR = 252
SEED = 7
START = "2012-01-02"
CALENDAR = "XWAR"
# As conf/base/parameters_silver.yml (silver.parsing).
PARSING = {"date_format": "%Y-%m-%d", "decimal": "."}
RUN_DATE = "2026-11-23"
RUN = {"id": "bench", "date": RUN_DATE, "time": f"{RUN_DATE}T18:00:00+00:00"}
FULL = {"mode": "full", "after": {}, "chunks": [[None, None]]}


@dataclass
class Result:
    size: str
    variant: str
    symbols: int
    sessions: int
    bronze_rows: int
    silver_rows: int
    quarantined: int
    exact_duplicates: int
    ingest_s: float
    validate_s: float
    health_s: float
    max_rss_mib: float

    @property
    def total_s(self) -> float:
        return self.ingest_s + self.validate_s + self.health_s

    @property
    def rows_per_s(self) -> float:
        return self.bronze_rows / self.total_s if self.total_s else float("nan")

    @property
    def identity_holds(self) -> bool:
        return self.bronze_rows == self.silver_rows + self.quarantined + self.exact_duplicates


def parse_sizes(text: str) -> list[tuple[int, int]]:
    sizes = []
    for item in text.split(","):
        symbols, _, years = item.strip().lower().partition("x")
        if not symbols or not years:
            raise argparse.ArgumentTypeError(f"size {item!r} is not SYMBOLSxYEARS, e.g. 500x10")
        sizes.append((int(symbols), int(years)))
    return sizes


def inputs(n_symbols: int, sessions: int, defects: int = 0) -> tuple[dict, dict]:
    symbols = [f"S{i:04d}" for i in range(n_symbols)]
    source = {
        "kind": "synthetic",
        "synthetic": {
            "seed": SEED,
            "symbols": symbols,
            "start": START,
            "sessions": sessions,
            "calendar": CALENDAR,
            "defects": {
                kind: defects * max(1, n_symbols // 100)
                for kind in DEFECTS
                if kind != "stale_series"
            },
        },
    }
    universe = {"groups": {"bench": {"calendar": CALENDAR, "symbols": symbols}}}
    return source, universe


def _no_yahoo(*args):
    raise AssertionError("the benchmark never fetches")


def run_once(n_symbols: int, sessions: int, defects: int = 0) -> tuple[dict[str, float], tuple]:
    """One ingest + silver pass; returns seconds per step and the outputs of the last step."""
    source, universe = inputs(n_symbols, sessions, defects)

    t0 = time.perf_counter()
    (bronze,) = extract_prices({}, _no_yahoo, FULL, source, {}, universe, PARSING, RUN).values()
    t1 = time.perf_counter()
    silver, quarantine, accounting = validate_prices(bronze, universe, PARSING, RUN_DATE)
    t2 = time.perf_counter()
    data_health(silver, accounting, universe, RUN_DATE, max_sessions_behind=1)
    t3 = time.perf_counter()

    seconds = {"ingest": t1 - t0, "validate": t2 - t1, "health": t3 - t2}
    return seconds, (bronze, silver, quarantine, accounting)


def max_rss_mib() -> float:
    # ru_maxrss is KiB on Linux (bytes on macOS); this benchmark targets Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_size(n_symbols: int, years: int, repeat: int, defects: int = 0) -> Result:
    sessions = years * SESSIONS_PER_YEAR
    best: dict[str, float] = {}
    outputs = None
    for _ in range(repeat):
        seconds, outputs = run_once(n_symbols, sessions, defects)
        best = {k: min(v, best.get(k, float("inf"))) for k, v in seconds.items()}
    bronze, silver, quarantine, accounting = outputs
    result = Result(
        size=f"{n_symbols}x{years}",
        variant=f"defects {defects}/100 sym" if defects else "clean",
        symbols=n_symbols,
        sessions=sessions,
        bronze_rows=len(bronze),
        silver_rows=len(silver),
        quarantined=len(quarantine),
        exact_duplicates=int(accounting["exact_duplicates"].sum()),
        ingest_s=best["ingest"],
        validate_s=best["validate"],
        health_s=best["health"],
        max_rss_mib=max_rss_mib(),
    )
    del outputs, bronze, silver, quarantine, accounting
    return result


def markdown_table(results: list[Result], repeat: int) -> str:
    header = (
        "| size (sym x yr) | input | sessions | bronze rows | quarantined | ingest s | validate s "
        "| health s | total s | rows/s | max RSS MiB (cumulative) |"
    )
    lines = [
        f"Best of {repeat} run(s) per step; RSS is the process peak so far.",
        "",
        header,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.size} | {r.variant} | {r.sessions:,} | {r.bronze_rows:,} | {r.quarantined:,} "
            f"| {r.ingest_s:.2f} "
            f"| {r.validate_s:.2f} | {r.health_s:.2f} | {r.total_s:.2f} "
            f"| {r.rows_per_s:,.0f} | {r.max_rss_mib:,.0f} |"
        )
    return "\n".join(lines)


def profile(n_symbols: int, years: int, top: int = 25) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    run_once(n_symbols, years * SESSIONS_PER_YEAR)
    profiler.disable()
    for sort in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(sort).print_stats(top)
        print(f"\n=== cProfile {n_symbols}x{years}, top {top} by {sort} ===")
        print(out.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=parse_sizes("50x2,500x2,500x10"),
        help="comma-separated SYMBOLSxYEARS (YEARS * 252 sessions); default 50x2,500x2,500x10",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per size; best is reported")
    parser.add_argument(
        "--defects",
        type=int,
        default=0,
        help="also run each size with this many of every defect kind per 100 symbols",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead of timing, cProfile one run of each size and print the top functions",
    )
    args = parser.parse_args()

    # Warm-up: imports of pandera / exchange-calendars and first-call caches stay out of figures.
    run_once(2, 5)

    if args.profile:
        for n_symbols, years in args.sizes:
            profile(n_symbols, years)
        return

    wall = time.perf_counter()
    results = []
    variants = [0, args.defects] if args.defects else [0]
    for n_symbols, years in args.sizes:
        for defects in variants:
            r = bench_size(n_symbols, years, max(1, args.repeat), defects)
            results.append(r)
            print(
                f"{r.size:>9} {r.variant}: {r.bronze_rows:>9,} rows  ingest {r.ingest_s:7.2f}s  "
                f"validate {r.validate_s:7.2f}s  health {r.health_s:6.2f}s  "
                f"total {r.total_s:7.2f}s  {r.rows_per_s:>10,.0f} rows/s  "
                f"maxRSS {r.max_rss_mib:,.0f} MiB",
                flush=True,
            )
            print(
                f"{'':>9}  accounting: bronze {r.bronze_rows:,} == silver {r.silver_rows:,} "
                f"+ quarantine {r.quarantined:,} + exact duplicates {r.exact_duplicates:,} "
                f"-> {'OK' if r.identity_holds else 'MISMATCH'}",
                flush=True,
            )
    print()
    print(markdown_table(results, max(1, args.repeat)))
    print(f"\nWall time (after warm-up): {time.perf_counter() - wall:.1f}s")


if __name__ == "__main__":
    main()
