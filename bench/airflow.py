"""Airflow cost of the generated DAGs: parse time per DAG file, and per-task overhead.

1. Parse time. ``make dags`` writes every env's DAG files; each file is parsed the way the
   dag-processor does it (``DagBag`` on that one file) in a warm process that has already imported
   Airflow, ``--repeat`` times; the median and the worst are printed per file (goal ≤ 0.2 s).
2. Per-task overhead. The test env's training DAG and then its daily DAG run under
   ``airflow dags test`` in a scratch copy (SQLite metadata DB). For each task of the daily run,
   Airflow's duration (start to end of the task instance) is set beside the node's own work: the
   same Kedro nodes run again in one warm process with their inputs loaded beforehand, timing only
   ``node.run``. The difference is what running a node as an Airflow task costs (a KedroSession,
   config and catalog, the MLflow hook, loading and saving datasets, Airflow's bookkeeping); goal
   ≤ 3 s. ``airflow dags test`` runs every task in one process, so Python imports (Kedro, MLflow,
   scikit-learn) are paid by the first task only.
3. The same daily DAG on a real deployment (``--local-executor``): scheduler, dag-processor and
   api-server with the LocalExecutor on a PostgreSQL metadata DB (tests/integration/
   airflow_stack.py), triggered through the REST API, twice: as Airflow comes, where every task
   runs in a fresh process and pays the imports again, and with the project's
   airflow/airflow_local_settings.py, which imports them once in the scheduler, whose forked task
   processes then start warm. Durations are set beside the ``dags test`` one and the node's.

It prints figures and asserts nothing. From the project root:

    .venv/bin/python bench/airflow.py                    # parts 1 and 2 (about 5 min on 2 cores)
    .venv/bin/python bench/airflow.py --local-executor   # and part 3 (PostgreSQL on 127.0.0.1)
    .venv/bin/python bench/airflow.py --parse-only
    .venv/bin/python bench/airflow.py --per-symbol       # part 1, pooled and every env per symbol
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(REPO))

from tests.integration.project import airflow_env, copy_project, make_dags  # noqa: E402

PARSE_SCRIPT = """
import json, statistics, sys, time
from pathlib import Path
from airflow.dag_processing.dagbag import DagBag
folder, repeat = Path(sys.argv[1]), int(sys.argv[2])
start = time.perf_counter()
DagBag(dag_folder=str(next(folder.glob("*.py"))))  # warm-up: what the file's imports cost once
figures = {"(first parse, cold)": {"median": time.perf_counter() - start, "max": 0, "tasks": 0}}
for path in sorted(folder.glob("*.py")):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        bag = DagBag(dag_folder=str(path))
        times.append(time.perf_counter() - start)
    assert not bag.import_errors, bag.import_errors
    figures[path.name] = {"median": statistics.median(times), "max": max(times),
                          "tasks": sum(len(d.tasks) for d in bag.dags.values())}
print(json.dumps(figures))
"""

NODE_SCRIPT = """
import json, sys, time
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
project, names, identity = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
bootstrap_project(project)
# the daily DAG run's identity: its nodes read that run's partitions (bronze, quarantine, health)
with KedroSession.create(project_path=project, env="test", runtime_params=identity) as session:
    context = session.load_context()
    catalog = context.catalog
    from kedro.framework.project import pipelines
    daily = pipelines["daily"]
    figures = {}
    for node in daily.nodes:
        if node.name not in names:
            continue
        inputs = {name: catalog.load(name) for name in node.inputs}
        start = time.perf_counter()
        node.run(inputs)
        figures[node.name] = time.perf_counter() - start
print(json.dumps(figures))
"""


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
        raise SystemExit(f"{' '.join(args)} exited {result.returncode}:\n{tail}")
    return result


def _last_json(text: str):
    return json.loads(next(line for line in reversed(text.splitlines()) if line[:1] in "[{"))


def parse_times(
    work: Path, project: Path, env: dict[str, str], repeat: int, per_symbol: bool
) -> None:
    dags = work / ("dags_per_symbol" if per_symbol else "dags")
    if per_symbol:
        # Every env one model per symbol: its 3 group DAGs plus one training DAG per symbol.
        for name in ["dev", "test", "prod"]:
            (project / "conf" / name / "parameters_model_scope.yml").write_text(
                "model_scope:\n  kind: per_symbol\n"
            )
        make_dags(project, dags, "dev test prod")
    else:
        make = ["make", "-C", str(REPO), "dags", f"DAGS_DIR={dags}", f"PROJECT_PATH={project}"]
        _run(make, REPO, env)
    counts = {
        name: len(list(dags.glob(f"stock_ml_{name}_*_dag.py"))) for name in ["dev", "test", "prod"]
    }
    scope = "per_symbol" if per_symbol else "pooled"
    print(f"\nDAGs per env ({scope}): " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    figures = _last_json(
        _run([str(BIN / "python"), "-c", PARSE_SCRIPT, str(dags), str(repeat)], work, env).stdout
    )
    print(f"\nDAG file parse time (DagBag of one file, warm process, {repeat} runs; goal ≤ 0.2 s)")
    print(f"{'file':<40} {'tasks':>5} {'median s':>9} {'max s':>7}")
    for name, row in sorted(figures.items(), key=lambda kv: -kv[1]["median"]):
        print(f"{name:<40} {row['tasks']:>5} {row['median']:>9.3f} {row['max']:>7.3f}")
    cold = figures.pop("(first parse, cold)")["median"]
    total = sum(row["median"] for row in figures.values())
    print(f"{len(figures)} files, {total:.2f} s in all (medians); the first parse of the process")
    print(f"took {cold:.3f} s (the template's imports, paid once per dag-processor)")


def task_overhead(work: Path, project: Path, env: dict[str, str], local_executor: bool) -> None:
    airflow = str(BIN / "airflow")
    _run([airflow, "db", "migrate"], work, env)
    for dag_id in ["test_stock_ml_training", "test_stock_ml_daily"]:
        _run([airflow, "dags", "test", dag_id], work, env)
    runs = _last_json(
        _run([airflow, "dags", "list-runs", "test_stock_ml_daily", "-o", "json"], work, env).stdout
    )
    daily_run = max(runs, key=lambda r: r["start_date"] or "")
    run_id = daily_run["run_id"]
    identity = json.dumps({"run_id": run_id, "run_date": daily_run["logical_date"][:10]})
    states = _last_json(
        _run(
            [airflow, "tasks", "states-for-dag-run", "test_stock_ml_daily", run_id, "-o", "json"],
            work,
            env,
        ).stdout
    )
    durations = {}
    for row in states:
        if row["start_date"] and row["end_date"] and row["state"] == "success":
            started = _timestamp(row["start_date"])
            durations[row["task_id"]] = _timestamp(row["end_date"]) - started
    nodes = {task: task.replace("-", "_") for task in durations}
    names = json.dumps(list(nodes.values()))
    own = _last_json(
        _run(
            [str(BIN / "python"), "-c", NODE_SCRIPT, str(project), names, identity], project, env
        ).stdout
    )
    ways = {"dags test": durations}
    if local_executor:
        ways["local"] = local_executor_durations(work, project, preload=False)
        ways["preloaded"] = local_executor_durations(work, project, preload=True)
    print("\nPer-task seconds and overhead over the node's own work, test env daily DAG")
    print("(goal ≤ 3 s).", end=" ")
    print("dags test = one process; local = LocalExecutor, a fresh process per task; preloaded =")
    print("LocalExecutor with airflow/airflow_local_settings.py (task processes forked warm)")
    print(f"{'task':<34} " + " ".join(f"{way:>10}" for way in ways) + f" {'node':>6}  overheads")
    overheads: dict[str, list[float]] = {way: [] for way in ways}
    for task in sorted(durations, key=lambda t: -durations[t]):
        seconds = [ways[way].get(task) for way in ways]
        shown = " ".join(f"{v:>10.2f}" if v is not None else f"{'-':>10}" for v in seconds)
        node = nodes[task]
        if node not in own:
            # several nodes grouped by memory datasets, or not a Kedro node (the branch)
            print(f"{task:<34} {shown} {'-':>6}")
            continue
        for way, value in zip(ways, seconds, strict=True):
            if value is not None:
                overheads[way].append(value - own[node])
        extra = " / ".join(f"{v - own[node]:.2f}" for v in seconds if v is not None)
        print(f"{task:<34} {shown} {own[node]:>6.2f}  {extra}")
    for label, values in overheads.items():
        if values:
            print(
                f"overhead per single-node task, {label}: median "
                f"{statistics.median(values):.2f} s, max {max(values):.2f} s "
                f"over {len(values)} tasks"
            )


def local_executor_durations(work: Path, project: Path, preload: bool) -> dict[str, float]:
    """The daily DAG once more on a LocalExecutor deployment; seconds per successful task."""
    from tests.integration.airflow_stack import AirflowStack
    from tests.postgres import scratch_database

    with (
        scratch_database("stock_ml_bench_airflow") as metadata_url,
        AirflowStack(work / f"local_executor_{preload}", metadata_url, preload=preload) as stack,
    ):
        for dag_file in (work / "dags").glob("stock_ml_test_*.py"):
            (stack.dags / dag_file.name).write_text(dag_file.read_text())
        stack.wait_for_dags(["test_stock_ml_daily", "test_stock_ml_training"])
        stack.set_paused("test_stock_ml_training", True)
        started = time.perf_counter()
        run_id = stack.trigger("test_stock_ml_daily")
        state = stack.wait_for_run("test_stock_ml_daily", run_id)
        took = time.perf_counter() - started
        print(f"\nLocalExecutor daily DAG run (preload {preload}): {state} in {took:.0f} s")
        tasks = stack.task_instances("test_stock_ml_daily", run_id)
    return {t: row["duration"] for t, row in tasks.items() if row["state"] == "success"}


def _timestamp(value: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="parses per DAG file")
    parser.add_argument("--parse-only", action="store_true", help="skip the task overhead part")
    parser.add_argument(
        "--per-symbol",
        action="store_true",
        help="also parse every env's DAGs with model_scope per_symbol (implies --parse-only)",
    )
    parser.add_argument(
        "--local-executor",
        action="store_true",
        help="also run the daily DAG on a LocalExecutor deployment (needs PostgreSQL)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_airflow_") as tmp:
        work = Path(tmp)
        project = copy_project(work / "project")
        home = work / "airflow_home"
        home.mkdir()
        env = airflow_env(home, work / "dags")
        os.environ.update(KEDRO_DISABLE_TELEMETRY="true")
        started = time.perf_counter()
        parse_times(work, project, env, args.repeat, per_symbol=False)
        if args.per_symbol:  # beside the pooled DAGs, in the same run
            parse_times(work, project, env, args.repeat, per_symbol=True)
        if not (args.parse_only or args.per_symbol):
            task_overhead(work, project, env, args.local_executor)
        print(f"\nbench wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
