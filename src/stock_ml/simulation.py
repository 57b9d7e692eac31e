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
from stock_ml.models import CHAMPION, PREVIOUS

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


def _session(project: Path, scenario: dict, day: str, **identity: str) -> Any:
    """A Kedro session of the scenario's env on ``day``: its params plus ``identity``."""
    from kedro.framework.session import KedroSession

    runtime_params = {**(scenario.get("params") or {}), "run_date": day, **identity}
    return KedroSession.create(
        project_path=project, env=scenario["env"], runtime_params=runtime_params
    )


def _run(project: Path, scenario: dict, pipeline: str, day: str, kind: str) -> Any:
    """One Kedro session for ``day``: the scenario's params plus the run identity a DAG passes."""
    import mlflow

    # A simulated clock: bronze ingest times and prediction times follow the replayed days.
    identity = {"run_id": f"simulated__{day}__{kind}", "run_time": f"{day}T18:00:00+00:00"}
    with _session(project, scenario, day, **identity) as session:
        session.run(pipeline_name=pipeline)
        # kedro-mlflow leaves its run open when the session ends in-process; one run per session.
        while mlflow.active_run():
            mlflow.end_run()
        return session.load_context().catalog


def _catalog(project: Path, scenario: dict, day: str) -> Any:
    """The env's catalog as a run on ``day`` would see it, without running anything."""
    with _session(project, scenario, day) as session:
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


ROLLOUT_TIMELINE_COLUMNS = [
    "rollout",
    "day",
    "candidate_version",
    "stage",
    "share",
    "decision",
    "canary_symbols",
    "canary_accuracy",
    "control_accuracy",
    "champion_after",
    "previous_after",
    "served",
    "missing",
]


def inject_label_flip_candidate(project: Path, scenario: dict, day: str) -> int:
    """Register a deliberately broken model as the next version: a logistic regression fitted on
    the gold store's trainable rows up to ``day`` with every label flipped (a sign bug in a
    label job), tagged like the champion (its training window, so monitoring can read it) and
    as ``family: injected_label_flip``. Returns its version."""
    import mlflow
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from stock_ml.models import CHALLENGER, ModelCandidate

    with _session(project, scenario, day) as session:
        catalog = session.load_context().catalog
        champion = catalog.load("champion_model@serving")
        features = list(champion.model.feature_names_in_)
        gold = catalog.load("gold_model_input")
        rows = gold[gold["is_trainable"] & (gold["date"] <= pd.Timestamp(day))]
        estimator = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        estimator.fit(rows[features], 1 - rows["label_up"].astype(int))
        tags = {**champion.tags, "family": "injected_label_flip", "training_run_date": day}
        candidate = ModelCandidate(
            estimator,
            rows[features].head(5).reset_index(drop=True),
            tags,
            "injected: labels flipped",
        )
        with mlflow.start_run(run_name=f"injected-label-flip-{day}"):
            catalog.save("challenger_model", candidate)
        return int(catalog.load("model_registry").version_of(CHALLENGER))


def _served_on_latest(catalog: Any, run_id: str) -> tuple[dict[str, int], list[str]]:
    """This run's serving predictions of its latest as-of date (symbol → version), and the
    symbols with complete features that date but no serving prediction."""
    from stock_ml.models import SERVING, with_roles

    # The run scored the log's latest as-of date: read only that date's partitions.
    partitions = catalog.load("predictions")
    latest_key = max(key.split("/")[0] for key in partitions)
    frames = [load() for key, load in partitions.items() if key.split("/")[0] == latest_key]
    logged = with_roles(pd.concat(frames, ignore_index=True))
    ours = logged[(logged["scored_by_run"] == run_id) & (logged["role"] == SERVING)]
    latest = ours["as_of_date"].max()
    served = ours.set_index("symbol")["model_version"]
    gold = catalog.load("gold_model_input")
    scorable = set(gold.loc[gold["has_features"] & (gold["date"] == latest), "symbol"])
    return {s: int(v) for s, v in served.sort_index().items()}, sorted(scorable - set(served.index))


def _rollout_candidate(project: Path, scenario: dict, spec: dict, day: str) -> int:
    """The version a rollout of the scenario rolls out: a real retraining (with the rollout's own
    ``params`` over the scenario's, e.g. its gates), or an injected bad model; a retraining whose
    promotion already started its rollout needs no manual start."""
    if spec["candidate"] == "retrain":
        params = {**(scenario.get("params") or {}), **(spec.get("params") or {})}
        catalog = _run(project, {**scenario, "params": params}, "retraining", day, "training")
        return int(catalog.load("promotion_decision")["challenger_version"])
    if spec["candidate"] == "label_flip":
        return inject_label_flip_candidate(project, scenario, day)
    raise ValueError(f"rollout candidate must be retrain or label_flip, got {spec['candidate']!r}")


def simulate_rollouts(project: str | Path, scenario: dict) -> pd.DataFrame:
    """Train the first champion on ``train_on``; then, for each of the scenario's ``rollouts``
    in turn, make its candidate on the next session, start its rollout (the promotion's own, or
    ``rollout_start`` by hand) and run the daily pipeline session by session until the rollout
    completes, is rolled back or aborts. One timeline row per daily run
    (``ROLLOUT_TIMELINE_COLUMNS``)."""
    from kedro.framework.startup import bootstrap_project

    from stock_ml.pipelines.rollout.nodes import ABORT, COMPLETED, ROLLBACK
    from stock_ml.rollout import active_rollout

    project = Path(project).resolve()
    bootstrap_project(project)
    _run(project, scenario, "retraining", str(scenario["train_on"]), "training")
    days = [
        f"{d:%Y-%m-%d}"
        for d in exchange_sessions(scenario["calendar"], scenario["start"], scenario["end"])
    ]
    rows, cursor = [], 0
    for spec in scenario["rollouts"]:
        day = days[cursor]
        cursor += 1
        version = _rollout_candidate(project, scenario, spec, day)
        current = active_rollout(_catalog(project, scenario, day).load("stored_rollout_state"))
        if current is None or int(current["candidate_version"]) != version:
            manual = {
                **scenario,
                "params": {**(scenario.get("params") or {}), "rollout_candidate": version},
            }
            _run(project, manual, "rollout_start", day, "rollout_start")
        while cursor < len(days):
            day = days[cursor]
            cursor += 1
            catalog = _run(project, scenario, "daily", day, "daily")
            decision = catalog.load("rollout_decision")
            registry = catalog.load("model_registry")
            served, missing = _served_on_latest(catalog, f"simulated__{day}__daily")
            metrics = decision.get("metrics", {})
            rows.append(
                {
                    "rollout": spec["name"],
                    "day": day,
                    "candidate_version": version,
                    "stage": decision.get("stage"),
                    "share": decision.get("share"),
                    "decision": decision["decision"],
                    "canary_symbols": ",".join(decision.get("canary_symbols", [])),
                    "canary_accuracy": metrics.get("canary", {}).get("accuracy"),
                    "control_accuracy": metrics.get("control", {}).get("accuracy"),
                    "champion_after": registry.version_of(CHAMPION),
                    "previous_after": registry.version_of(PREVIOUS),
                    "served": ",".join(f"{s}:v{v}" for s, v in served.items()),
                    "missing": ",".join(missing),
                }
            )
            logger.info("Simulated %s %s: %s", spec["name"], day, decision["decision"])
            if decision["decision"] in (COMPLETED, ROLLBACK, ABORT):
                break
    return pd.DataFrame(rows, columns=ROLLOUT_TIMELINE_COLUMNS)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", help="scenario YAML (see conf/scenarios/)")
    parser.add_argument("--project", default=".", help="the Kedro project (default: here)")
    parser.add_argument("--timeline", required=True, help="CSV to write the timeline to")
    args = parser.parse_args(argv)
    scenario = load_scenario(args.scenario)
    run = simulate_rollouts if scenario.get("rollouts") else simulate
    timeline = run(args.project, scenario)
    Path(args.timeline).parent.mkdir(parents=True, exist_ok=True)
    timeline.to_csv(args.timeline, index=False)
    print(timeline.to_string(index=False))


if __name__ == "__main__":
    main()
