"""The Airflow export, really exercised: `make dags` for every env, DagBag import, and the test
env's DAGs run with `airflow dags test` on a SQLite metadata DB in a temporary AIRFLOW_HOME."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml

from stock_ml.runs import safe_run_id
from tests.integration.project import (
    BIN,
    REPO,
    airflow_env,
    copy_project,
    env_outputs,
    run,
)

pytestmark = pytest.mark.slow

# The test env's feed and verdict thresholds come from the simulated month's scenario: three
# symbols trend up and three down until 2022-03-14, when the trends reverse. Training and a
# first daily run happen before the shift (healthy); a daily run at the month's end sees it.
SCENARIO = "conf/scenarios/regime_shift_month.yml"
BEFORE_SHIFT, AFTER_SHIFT = "2022-03-11T12:00:00+00:00", "2022-03-31T12:00:00+00:00"
# A second daily run of the same session, narrowed to two symbols: another logical time, since
# `airflow dags test` replaces the run of an identical logical date (and reuses its run id).
NARROWED_RERUN = "2022-03-11T13:00:00+00:00"
SCOPE_PARAMS = {"symbols": None, "exchange_groups": None}

EXPECTED_DAG_IDS = {
    f"{env}_stock_ml_{group}"
    for env in ("dev", "test", "prod")
    for group in ("daily", "training", "backfill")
}

# Runs inside the Airflow environment: import every DAG file the way the scheduler would.
DAGBAG_SCRIPT = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({
    "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
    "dags": {
        d.dag_id: {
            "schedule": d.schedule if d.schedule is None else str(d.schedule),
            "paused": d.is_paused_upon_creation,
            "retries": d.default_args["retries"],
            "retry_delay_s": d.default_args["retry_delay"].total_seconds(),
            "catchup": d.catchup,
            "timezone": str(d.timezone),
            "tags": sorted(d.tags),
            "params": {k: d.params[k] for k in d.params},
            "tasks": sorted(t.task_id for t in d.tasks),
            "upstream": {t.task_id: sorted(t.upstream_task_ids) for t in d.tasks},
            "max_active_tasks": d.max_active_tasks,
            "task_settings": {
                t.task_id: {
                    "timeout_s": t.execution_timeout and t.execution_timeout.total_seconds(),
                    "retries": t.retries,
                    "retry_delay_s": t.retry_delay.total_seconds(),
                    "priority_weight": t.priority_weight,
                    "pool": t.pool,
                }
                for t in d.tasks
            },
            "operators": {t.task_id: type(t).__name__ for t in d.tasks},
            "file": d.fileloc,
        }
        for d in bag.dags.values()
    },
}))
"""


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory):
    """A scratch project, its generated DAGs, and an initialised Airflow home pointing at them."""
    base = tmp_path_factory.mktemp("airflow")
    project = copy_project(base / "project")
    dags = base / "dags"
    home = base / "airflow_home"
    home.mkdir()
    # The documented command, run against the repository, with DAGs pointing at the scratch copy.
    run(["make", "-C", str(REPO), "dags", f"DAGS_DIR={dags}", f"PROJECT_PATH={project}"], cwd=REPO)
    env = airflow_env(home, dags)
    run([str(BIN / "airflow"), "db", "migrate"], cwd=base, env=env)
    _lay_scenario_over_test_conf(project)
    return {"project": project, "dags": dags, "env": env, "cwd": base}


def _merge(into: dict, extra: dict) -> dict:
    for key, value in extra.items():
        into[key] = _merge(into.get(key, {}), value) if isinstance(value, dict) else value
    return into


def _lay_scenario_over_test_conf(project: Path) -> None:
    """The DAG tasks read conf from the project: the regime-shift month's feed and thresholds
    (conf/scenarios/regime_shift_month.yml) written into the scratch copy's test env."""
    scenario = yaml.safe_load((project / SCENARIO).read_text())["params"]
    for name in ["ingest", "monitoring"]:
        path = project / "conf" / "test" / f"parameters_{name}.yml"
        conf = yaml.safe_load(path.read_text()) if path.exists() else {}
        path.write_text(yaml.safe_dump(_merge(conf, {name: scenario[name]})))


@pytest.fixture(scope="module")
def dagbag(airflow) -> dict:
    result = run(
        [str(BIN / "python"), "-c", DAGBAG_SCRIPT, str(airflow["dags"])],
        cwd=airflow["cwd"],
        env=airflow["env"],
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_make_dags_writes_one_file_per_env_and_group(airflow) -> None:
    files = sorted(p.name for p in airflow["dags"].glob("*.py"))
    assert files == sorted(
        f"stock_ml_{env}_{pipeline}_dag.py"
        for env in ("dev", "test", "prod")
        for pipeline in ("daily", "retraining", "backfill")
    )


def test_dagbag_imports_every_dag_without_errors(dagbag: dict) -> None:
    assert dagbag["import_errors"] == {}
    assert set(dagbag["dags"]) == EXPECTED_DAG_IDS


def test_dag_settings_come_from_each_envs_conf(dagbag: dict) -> None:
    dags = dagbag["dags"]
    assert dags["prod_stock_ml_daily"]["schedule"] == "0 18 * * 1-5"
    assert dags["prod_stock_ml_training"]["schedule"] == "0 6 * * 6"
    for env in ("dev", "test"):
        for group in ("daily", "training"):
            assert dags[f"{env}_stock_ml_{group}"]["schedule"] is None
    for env in ("dev", "test", "prod"):
        backfill = dags[f"{env}_stock_ml_backfill"]
        assert backfill["schedule"] is None, "a backfill runs on demand"
        assert backfill["params"] == {
            "backfill_start": None,
            "backfill_end": None,
            **SCOPE_PARAMS,
        }
        assert dags[f"{env}_stock_ml_daily"]["params"] == SCOPE_PARAMS
        assert dags[f"{env}_stock_ml_training"]["params"] == {"search_profile": None}
    for dag_id, dag in dags.items():
        env = dag_id.split("_")[0]
        assert dag["paused"] is (env == "prod")
        assert dag["retries"] == {"dev": 1, "test": 0, "prod": 3}[env]
        assert dag["retry_delay_s"] == {"dev": 300, "test": 300, "prod": 600}[env]
        assert dag["catchup"] is False
        assert dag["timezone"] == "Europe/Warsaw"
        assert dag["tags"] == sorted(["stock_ml", env])


def test_task_settings_come_from_conf_by_node_tag(dagbag: dict) -> None:
    """airflow.yml: task_settings for every task, task_settings_by_tag for tasks holding a node
    with the tag (base: training 180 min at priority 10; prod: 240 min, and ingest retried 5
    times 2 minutes apart); a DAG's max_active_tasks from its env."""
    dags = dagbag["dags"]
    for env, timeout_min, retries in (("test", 180, 0), ("prod", 240, 3)):
        training = dags[f"{env}_stock_ml_training"]["task_settings"]
        (search,) = [t for t in training if "search-model" in t]
        assert training[search]["timeout_s"] == timeout_min * 60
        assert training[search]["priority_weight"] == 10
        assert training[search]["retries"] == retries  # the DAG's: no tag overrides it here
        assert training["build-features"]["timeout_s"] == 3600  # task_settings: every task
        assert training["build-features"]["priority_weight"] == 1
        assert {s["pool"] for s in training.values()} == {"default_pool"}
    ingest = dags["prod_stock_ml_daily"]["task_settings"]["plan-ingest-extract-prices"]
    assert (ingest["retries"], ingest["retry_delay_s"]) == (5, 120)
    test_ingest = dags["test_stock_ml_daily"]["task_settings"]["plan-ingest-extract-prices"]
    assert (test_ingest["retries"], test_ingest["retry_delay_s"]) == (0, 300)
    assert dags["prod_stock_ml_daily"]["max_active_tasks"] == 2
    assert dags["test_stock_ml_daily"]["max_active_tasks"] == 4


def test_every_kedro_task_runs_in_the_worker_by_default(dagbag: dict) -> None:
    """No env's conf sets `operator`: every Kedro task is a @task (operator: python) of the
    worker's process; the daily DAG's branch and trigger are the only other operators."""
    for dag_id, dag in dagbag["dags"].items():
        operators = dict(dag["operators"])
        if dag_id.endswith("_daily"):
            assert operators.pop("retrain-required") == "_BranchPythonDecoratedOperator"
            assert operators.pop("trigger-training") == "TriggerDagRunOperator"
        assert set(operators.values()) == {"_PythonDecoratedOperator"}, dag_id


@pytest.mark.parametrize(
    ("dag_id", "conf", "complaint"),
    [
        ("test_stock_ml_training", {"search_profile": "huge"}, "'huge' is not one of"),
        ("test_stock_ml_backfill", {"backfill_start": "2021-02-30"}, "is not a 'date'"),
        ("test_stock_ml_daily", {"symbols": 7}, "7 is not of type 'null', 'array'"),
        ("test_stock_ml_daily", {"symbols": ["AAA", 7]}, "7 is not of type 'string'"),
        ("test_stock_ml_backfill", {"exchange_groups": "warsaw"}, "'warsaw' is not of type"),
    ],
)
def test_an_invalid_trigger_conf_fails_before_any_task(airflow, dag_id, conf, complaint) -> None:
    """Params are JSON-schema specs in airflow.yml: Airflow refuses a bad value, naming it."""
    import subprocess

    result = subprocess.run(
        [str(BIN / "airflow"), "dags", "test", dag_id, "-c", json.dumps(conf)],
        cwd=airflow["cwd"],
        env=airflow["env"],
        capture_output=True,
        text=True,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0 and complaint in output, output[-3000:]
    assert "stock_ml audit:" not in output, "no task ran"


def test_tasks_follow_the_kedro_pipelines(dagbag: dict) -> None:
    daily = dagbag["dags"]["test_stock_ml_daily"]["tasks"]
    training = dagbag["dags"]["test_stock_ml_training"]["tasks"]
    assert "score-latest-sessions" in daily
    assert any("extract-prices" in t for t in daily)
    assert not any("search-model" in t for t in daily)
    # nodes joined by in-memory datasets run in one task (kedro-airflow --group-by memory)
    assert any("search-model" in t and "register-challenger" in t for t in training)
    assert "decide-promotion" in training
    # the daily DAG branches on monitoring's verdict and may trigger the env's training DAG
    upstream = dagbag["dags"]["test_stock_ml_daily"]["upstream"]
    assert upstream["retrain-required"] == ["decide-retraining"]
    assert upstream["trigger-training"] == ["retrain-required"]
    assert "retrain-required" not in dagbag["dags"]["test_stock_ml_training"]["tasks"]
    # the staged rollout's daily step runs after scoring and the shadow step; a promotion in the
    # training DAG may start one
    assert {"score-latest-sessions", "promote-after-shadow"} <= set(upstream["advance-rollout"])
    assert upstream["plot-rollout-history"] == ["advance-rollout"]
    assert (
        "decide-promotion" in dagbag["dags"]["test_stock_ml_training"]["upstream"]["start-rollout"]
    )


def test_transcoded_datasets_order_their_tasks(dagbag: dict) -> None:
    """silver_prices@pandas → silver_prices@engine and gold_features@engine → @pandas are edges."""
    upstream = dagbag["dags"]["test_stock_ml_training"]["upstream"]
    assert upstream["build-features"] == ["validate-prices-merge-silver-data-health"]
    assert "build-features" in upstream["build-model-input"]


def _dags_test(airflow, dag_id: str, conf: dict | None = None, logical_date: str = "") -> dict:
    extra = ["-c", json.dumps(conf)] if conf else []
    when = [logical_date] if logical_date else []
    tested = run(
        [str(BIN / "airflow"), "dags", "test", dag_id, *when, *extra],
        cwd=airflow["cwd"],
        env=airflow["env"],
    )
    listed = run(
        [str(BIN / "airflow"), "dags", "list-runs", dag_id, "-o", "json"],
        cwd=airflow["cwd"],
        env=airflow["env"],
    )
    json_line = next(line for line in listed.stdout.splitlines() if line.startswith("[{"))
    # the run `dags test` just ran: a run another DAG triggered stays queued, never started here
    latest = max(json.loads(json_line), key=lambda r: r["start_date"] or "")
    return {**latest, "output": tested.stdout + tested.stderr}


def _runs(airflow, dag_id: str) -> list[dict]:
    listed = run(
        [str(BIN / "airflow"), "dags", "list-runs", dag_id, "-o", "json"],
        cwd=airflow["cwd"],
        env=airflow["env"],
    )
    lines = [line for line in listed.stdout.splitlines() if line.startswith("[")]
    return json.loads(lines[0]) if lines else []


def _task_states(airflow, dag_id: str, run_id: str) -> dict[str, str]:
    listed = run(
        [str(BIN / "airflow"), "tasks", "states-for-dag-run", dag_id, run_id, "-o", "json"],
        cwd=airflow["cwd"],
        env=airflow["env"],
    )
    json_line = next(line for line in listed.stdout.splitlines() if line.startswith("[{"))
    return {row["task_id"]: row["state"] for row in json.loads(json_line)}


def test_training_then_daily_dag_run_under_airflow(airflow) -> None:
    """Both on the last session before the shift: the champion is healthy, nothing triggers."""
    project = airflow["project"]
    root = project / "data" / "test_stock_data"

    training = _dags_test(airflow, "test_stock_ml_training", logical_date=BEFORE_SHIFT)
    assert training["state"] == "success"
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    champion = client.get_model_version_by_alias("test_stock_ml_direction", "champion")
    # one MLflow parent run per DAG run; each task's run is its child, named after the task
    parent_id = client.get_run(champion.run_id).data.tags["mlflow.parentRunId"]
    parent = client.get_run(parent_id)
    assert parent.info.run_name == f"test_stock_ml_training/{training['run_id']}"
    assert parent.data.tags["airflow.run_id"] == training["run_id"]
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'"
    )
    task_ids = set(_task_states(airflow, "test_stock_ml_training", training["run_id"]))
    assert sorted(c.info.run_name for c in children) == sorted(task_ids)
    # audit: each task's run holds the settings it ran with and the DAG run's identity
    audit = client.get_run(champion.run_id).data.params
    assert audit["airflow.run_id"] == training["run_id"]
    assert audit["airflow.run_date"] == "2022-03-11"
    assert audit["airflow.task.execution_timeout_s"] == str(180 * 60.0)
    assert audit["airflow.task.priority_weight"] == "10"
    assert audit["airflow.task.retries"] == "0" and audit["airflow.task.try_number"] == "1"
    # and the logical date is the run date: the model learnt in data time
    assert champion.tags["training_run_date"] == "2022-03-11"

    training_runs = len(_runs(airflow, "test_stock_ml_training"))
    daily = _dags_test(airflow, "test_stock_ml_daily", logical_date=BEFORE_SHIFT)
    assert daily["state"] == "success"
    bronze = {
        path.stem.removeprefix("run_id="): pd.read_parquet(path)
        for path in (root / "02_bronze" / "prices").rglob("*.parquet")
    }
    assert set(bronze) == {safe_run_id(training["run_id"]), safe_run_id(daily["run_id"])}
    assert bronze[safe_run_id(training["run_id"])]["date"].max() == "2022-03-11"
    # the daily run came right after on the same date: the feed has no newer session
    assert bronze[safe_run_id(daily["run_id"])].empty
    predictions = pd.concat(
        pd.read_parquet(p)
        for p in (root / "07_predictions" / "predictions").glob("as_of_date=*/*.parquet")
    )
    assert set(predictions["model_version"]) == {int(champion.version)}
    # the publish tasks served exactly the predictions this DAG run scored
    served = pd.read_parquet(root / "09_serving" / "predictions.parquet")
    scored = predictions[predictions["scored_by_run"] == daily["run_id"]]
    assert len(served) == len(scored) and set(served["scored_by_run"]) <= {daily["run_id"]}
    assert (root / "08_reporting" / "monitoring_history.png").is_file()
    assert (root / "08_reporting" / "monitoring_history.html").is_file()
    verdict = json.loads((root / "08_reporting" / "retrain_decision.json").read_text())
    assert verdict["run_id"] == daily["run_id"] and verdict["run_date"] == "2022-03-11"
    assert verdict["retrain_required"] is False and verdict["reasons"] == []
    states = _task_states(airflow, "test_stock_ml_daily", daily["run_id"])
    assert states["retrain-required"] == "success" and states["trigger-training"] == "skipped"
    assert len(_runs(airflow, "test_stock_ml_training")) == training_runs
    # the DAGs ran the scratch copy (their baked project path), and only its test env
    assert env_outputs(project, "dev") == [] and env_outputs(project, "prod") == []


def _partition(folder: Path, run_id: str) -> pd.DataFrame:
    (path,) = folder.rglob(f"run_id={safe_run_id(run_id)}.parquet")
    return pd.read_parquet(path)


def test_a_trigger_conf_narrows_the_daily_run_to_its_symbols(airflow) -> None:
    """Issue 8's acceptance: the daily DAG triggered with {"symbols": ["AAA", "CCC"]} after a full
    daily run of the same session works on AAA and CCC only, and keeps the other four symbols'
    predictions in the log and in latest.json."""
    root = airflow["project"] / "data" / "test_stock_data"
    full = max(
        (r for r in _runs(airflow, "test_stock_ml_daily") if r["state"] == "success"),
        key=lambda r: r["start_date"] or "",
    )
    assert full["logical_date"].startswith("2022-03-11")
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    champion = int(client.get_model_version_by_alias("test_stock_ml_direction", "champion").version)
    narrowed = _dags_test(
        airflow, "test_stock_ml_daily", {"symbols": ["AAA", "CCC"]}, logical_date=NARROWED_RERUN
    )
    assert narrowed["state"] == "success" and narrowed["run_id"] != full["run_id"]
    # the Param reached every task's KedroSession as a list, intact
    audits = [
        json.loads(line.split("stock_ml audit: ", 1)[1])
        for line in narrowed["output"].splitlines()
        if "stock_ml audit: " in line
    ]
    assert audits and all(a["symbols"] == ["AAA", "CCC"] for a in audits)
    assert "Run scope: 2 symbols ['AAA', 'CCC']" in narrowed["output"]

    # ingest and data health: only the scope (the feed has no newer session: bronze is empty)
    bronze = _partition(root / "02_bronze" / "prices", narrowed["run_id"])
    assert set(bronze["symbol"]) <= {"AAA", "CCC"}
    health = _partition(root / "03_silver" / "data_health", narrowed["run_id"])
    assert sorted(health["symbol"]) == ["AAA", "CCC"]
    assert set(health["status"]) == {"fresh"}
    full_health = _partition(root / "03_silver" / "data_health", full["run_id"])
    assert sorted(full_health["symbol"]) == ["AAA", "BBB", "CCC", "DDD", "EEE", "FFF"]

    # the prediction log: the session's partition of the champion still has all six symbols,
    # AAA and CCC rescored by this run, the other four from the full run
    log = root / "07_predictions" / "predictions"
    day = pd.read_parquet(log / "as_of_date=2022-03-11" / f"model_version={champion}.parquet")
    by_symbol = day.set_index("symbol")["scored_by_run"].to_dict()
    assert by_symbol == {
        "AAA": narrowed["run_id"],
        "BBB": full["run_id"],
        "CCC": narrowed["run_id"],
        "DDD": full["run_id"],
        "EEE": full["run_id"],
        "FFF": full["run_id"],
    }
    every = pd.concat(pd.read_parquet(p) for p in log.glob("as_of_date=*/*.parquet"))
    assert not every.duplicated(["target_prediction_date", "symbol", "model_version"]).any()
    rescored = every[every["scored_by_run"] == narrowed["run_id"]]
    assert set(rescored["symbol"]) == {"AAA", "CCC"}
    assert set(every.loc[every["scored_by_run"] == full["run_id"], "symbol"]) == {
        "BBB",
        "DDD",
        "EEE",
        "FFF",
    }

    # publish: this run's rows only for its scope; the API still serves every symbol
    served = pd.read_parquet(root / "09_serving" / "predictions.parquet")
    assert set(served["symbol"]) == {"AAA", "CCC"}
    assert set(served["scored_by_run"]) == {narrowed["run_id"]} and len(served) == len(rescored)
    latest = json.loads((root / "07_predictions" / "api" / "latest.json").read_text())
    assert latest["as_of_date"] == "2022-03-11"
    assert [p["symbol"] for p in latest["predictions"]] == [
        "AAA",
        "BBB",
        "CCC",
        "DDD",
        "EEE",
        "FFF",
    ]
    assert {p["model_version"] for p in latest["predictions"]} == {champion}
    served_data_health = pd.read_parquet(root / "09_serving" / "data_health.parquet")
    assert sorted(served_data_health["symbol"]) == ["AAA", "CCC"]


def test_after_the_regime_shift_the_daily_dag_triggers_training(airflow) -> None:
    """The generator's trends reverse on 2022-03-14: by the month's end the matured predictions
    of the champion are mostly wrong, the verdict says so and the daily DAG queues training."""
    root = airflow["project"] / "data" / "test_stock_data"
    training_runs = len(_runs(airflow, "test_stock_ml_training"))
    degraded = _dags_test(airflow, "test_stock_ml_daily", logical_date=AFTER_SHIFT)
    assert degraded["state"] == "success"
    verdict = json.loads((root / "08_reporting" / "retrain_decision.json").read_text())
    assert verdict["run_id"] == degraded["run_id"] and verdict["run_date"] == "2022-03-31"
    assert verdict["retrain_required"] is True
    assert [r.split(":")[0] for r in verdict["reasons"]] == ["performance_below_floor"]
    assert verdict["checks"]["rolling_accuracy"] < verdict["thresholds"]["accuracy_floor"]
    states = _task_states(airflow, "test_stock_ml_daily", degraded["run_id"])
    assert states["trigger-training"] == "success"
    runs = _runs(airflow, "test_stock_ml_training")
    assert len(runs) == training_runs + 1, "one training run queued by the daily DAG"
    assert sorted(r["state"] for r in runs).count("queued") == 1


def _latest_silver(root) -> pd.DataFrame:
    latest = sorted((root / "03_silver" / "prices.parquet").iterdir())[-1]
    return pd.read_parquet(latest / "prices.parquet")


def test_backfill_dag_takes_its_range_from_the_trigger_conf(airflow) -> None:
    root = airflow["project"] / "data" / "test_stock_data"
    before = _latest_silver(root)
    conf = {"backfill_start": "2021-03-01", "backfill_end": "2021-05-31"}
    backfill = _dags_test(airflow, "test_stock_ml_backfill", conf)
    assert backfill["state"] == "success"
    (path,) = (root / "02_bronze" / "prices").rglob(
        f"run_id={safe_run_id(backfill['run_id'])}.parquet"
    )
    bronze = pd.read_parquet(path)
    assert set(bronze["ingest_mode"]) == {"backfill"}
    assert sorted(set(bronze["ingest_chunk"])) == ["2021-03", "2021-04", "2021-05"]
    after = _latest_silver(root)
    assert len(after) == len(before), "a backfill of stored sessions replaces, never adds"
    in_range = after["date"].between("2021-03-01", "2021-05-31")
    assert set(after.loc[in_range, "ingest_run_id"]) == {backfill["run_id"]}
    assert backfill["run_id"] not in set(after.loc[~in_range, "ingest_run_id"])
    pd.testing.assert_frame_equal(
        after.drop(columns="ingest_run_id"), before.drop(columns="ingest_run_id")
    )
