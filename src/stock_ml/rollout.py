"""Staged rollout of a new champion by instrument share: the state table and the cohort rule.

During a rollout the new champion (the ``candidate``) serves a growing, seeded share of the
universe (the canary cohort) while the version it replaced (the ``baseline``, alias
``previous``) serves the rest (the control cohort). Inference reads this module to split the
symbols; the rollout pipeline (stock_ml.pipelines.rollout) advances, completes or rolls back.

Cohort rule: the enabled universe's symbols ordered by SHA-256 of ``<rollout_id>:<symbol>``; the
canary cohort of a stage with share ``s`` is the first ``ceil(s * n)`` of them, at least one and,
below 100 %, at most ``n - 1`` (a control must remain to compare with). The order depends only on
the rollout id and the symbol, so cohorts never reshuffle between runs or processes (Python's
``hash`` is salted per process, hence hashlib), and each stage's cohort contains the previous
stage's: a canary symbol stays canary as the share grows. A symbol added to the universe
mid-rollout takes its place in the order; the others keep theirs.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable

import pandas as pd

ACTIVE, COMPLETE, FAILED, ABORTED, SUPERSEDED = (
    "active",
    "complete",
    "failed",
    "aborted",
    "superseded",
)

# The rollout state table: one row per rollout (conf/base/catalog.yml `rollouts`).
ROLLOUT_COLUMNS = {
    "rollout_id": "object",
    "model_name": "object",
    "candidate_version": "Int64",
    "baseline_version": "Int64",
    "started_by": "object",  # promotion | shadow | manual
    "started": "object",  # run date, YYYY-MM-DD
    "status": "object",
    "stage": "Int64",  # index into rollout.stages
    "share": "float64",
    "stage_started": "object",  # run date the stage began; its as-of dates come after it
    "ended": "object",
    "previous_released": "object",  # run date the `previous` alias was let go after completion
    "reasons": "object",
}


def cohort_order(symbols: Iterable[str], rollout_id: str) -> list[str]:
    """The symbols in the rollout's fixed, seeded order."""

    def key(symbol: str) -> str:
        return hashlib.sha256(f"{rollout_id}:{symbol}".encode()).hexdigest()

    return sorted(set(symbols), key=lambda symbol: (key(symbol), symbol))


def canary_size(symbols: int, share: float) -> int:
    """How many symbols the canary cohort of ``share`` holds (see the module docstring)."""
    if not 0 < share <= 1:
        raise ValueError(f"rollout stage shares are in (0, 1], got {share}")
    if share >= 1 or symbols < 2:
        return symbols
    return min(max(1, math.ceil(share * symbols)), symbols - 1)


def canary_symbols(symbols: Iterable[str], rollout_id: str, share: float) -> set[str]:
    """The canary cohort of a stage: served by the candidate."""
    order = cohort_order(symbols, rollout_id)
    return set(order[: canary_size(len(order), share)])


def active_rollout(rollouts: pd.DataFrame | None) -> dict | None:
    """The active rollout's row, or None; two active rollouts are a corrupt table."""
    if rollouts is None or rollouts.empty:
        return None
    active = rollouts[rollouts["status"] == ACTIVE]
    if len(active) > 1:
        raise ValueError(f"rollout state: {len(active)} active rollouts {list(active.rollout_id)}")
    return None if active.empty else active.iloc[0].to_dict()
