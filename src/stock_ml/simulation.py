"""Replay the daily operations loop over a range of sessions, the way the env's DAGs run it.

Each session of the range gets the daily pipeline (ingest → features → inference → monitoring →
verdict) with that session as ``run_date``; when the verdict says ``retrain_required``, the
retraining pipeline runs the same day, as the daily DAG's ``trigger-training`` branch would queue
it, and its promotion decision is read back. The result is a timeline: one row per day with the
verdict, its reasons and what training and promotion made of them.

Why a driver of its own rather than Airflow: a month of ``airflow dags test`` runs costs a
scheduler start-up per DAG run and per task; this runs the same Kedro pipelines in one process,
so a whole month fits in an integration test and in a notebook. Airflow's branch itself is tested
under ``airflow dags test`` (tests/integration/test_airflow_dags.py).

A scenario is a YAML file (see ``conf/scenarios/``): the env, the dates, and parameters laid
over the env's conf for every run (for example the synthetic feed's regime shifts)::

    python -m stock_ml.simulation conf/scenarios/regime_shift_month.yml --timeline out.csv
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from stock_ml.calendars import exchange_sessions
from stock_ml.models import CHAMPION

logger = logging.getLogger(__name__)

TIMELINE_COLUMNS = [
    "day",
    "retrain_required",
    "reasons",
    "suppressed_by",
    "rolling_accuracy",
    "drifted_features",
    "prediction_psi",
    "champion_before",
    "trained_version",
    "promotion",
    "failed_gates",
    "champion_after",
]


def load_scenario(path: str | Path) -> dict:
    """The scenario file, checked for the keys the driver needs."""
    scenario = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    missing = {"env", "calendar", "start", "end"} - set(scenario)
    if missing:
        raise ValueError(f"{path}: scenario needs keys {sorted(missing)}")
    return scenario


def _run(project: Path, scenario: dict, pipeline: str, day: str, kind: str) -> Any:
    """One Kedro session for ``day``: the scenario's params plus the run identity a DAG passes."""
    import mlflow
    from kedro.framework.session import KedroSession

    runtime_params = {
        **(scenario.get("params") or {}),
        "run_id": f"simulated__{day}__{kind}",
        "run_date": day,
        # A simulated clock: bronze ingest times and prediction times follow the replayed days.
        "run_time": f"{day}T18:00:00+00:00",
    }
    with KedroSession.create(
        project_path=project, env=scenario["env"], runtime_params=runtime_params
    ) as session:
        session.run(pipeline_name=pipeline)
        # kedro-mlflow leaves its run open when the session ends in-process; one run per session.
        while mlflow.active_run():
            mlflow.end_run()
        return session.load_context().catalog


def _reason_codes(reasons: list[str]) -> str:
    return ",".join(reason.split(":")[0] for reason in reasons)


def simulate(project: str | Path, scenario: dict) -> pd.DataFrame:
    """Run the scenario's days in order and return the timeline (``TIMELINE_COLUMNS``).

    ``train_on`` (optional): a retraining run that day first, so the month starts with a
    champion. Every day is a session of ``calendar`` between ``start`` and ``end``.
    """
    from kedro.framework.startup import bootstrap_project

    project = Path(project).resolve()
    bootstrap_project(project)
    if scenario.get("train_on"):
        _run(project, scenario, "retraining", str(scenario["train_on"]), "training")
    rows = []
    days = exchange_sessions(scenario["calendar"], scenario["start"], scenario["end"])
    for day in (f"{d:%Y-%m-%d}" for d in days):
        catalog = _run(project, scenario, "daily", day, "daily")
        verdict = catalog.load("retrain_decision")
        before = catalog.load("model_registry")
        row = {
            "day": day,
            "retrain_required": verdict["retrain_required"],
            "reasons": _reason_codes(verdict["reasons"]),
            "suppressed_by": verdict["checks"].get("suppressed_by"),
            "rolling_accuracy": verdict["checks"].get("rolling_accuracy"),
            "drifted_features": verdict["checks"].get("drifted_features"),
            "prediction_psi": verdict["checks"].get("prediction_psi"),
            "champion_before": before.version_of(CHAMPION),
            "trained_version": None,
            "promotion": None,
            "failed_gates": None,
            "champion_after": before.version_of(CHAMPION),
        }
        if verdict["retrain_required"]:
            catalog = _run(project, scenario, "retraining", day, "training")
            decision = catalog.load("promotion_decision")
            after = catalog.load("model_registry")
            row |= {
                "trained_version": decision["challenger_version"],
                "promotion": decision["action"],
                "failed_gates": ",".join(g["gate"] for g in decision["gates"] if not g["passed"]),
                "champion_after": after.version_of(CHAMPION),
            }
        logger.info("Simulated %s: %s", day, {k: row[k] for k in ("reasons", "promotion")})
        rows.append(row)
    return pd.DataFrame(rows, columns=TIMELINE_COLUMNS)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", help="scenario YAML (see conf/scenarios/)")
    parser.add_argument("--project", default=".", help="the Kedro project (default: here)")
    parser.add_argument("--timeline", required=True, help="CSV to write the timeline to")
    args = parser.parse_args(argv)
    timeline = simulate(args.project, load_scenario(args.scenario))
    Path(args.timeline).parent.mkdir(parents=True, exist_ok=True)
    timeline.to_csv(args.timeline, index=False)
    print(timeline.to_string(index=False))


if __name__ == "__main__":
    main()
