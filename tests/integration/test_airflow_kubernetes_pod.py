"""Tasks with `operator: kubernetes_pod`, exercised without a cluster.

The scratch copy's test env sends its Kedro tasks to pods (training tasks with more memory, the
publish tasks kept in the worker); `make dags` writes the dev and test DAGs from it, Airflow's
DagBag imports them, `airflow tasks render` renders a pod task for a triggered DAG run exactly as
the worker would before creating the pod, and the rendered command runs in the scratch copy.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from slugify import slugify

from stock_ml.pipeline_registry import register_pipelines
from stock_ml.runs import safe_run_id
from tests.integration.project import BIN, airflow_env, command_env, copy_project, make_dags, run

pytestmark = pytest.mark.slow

IMAGE = "registry.invalid/stock_ml:test"
POD_CONF = {
    "kubernetes": {
        "image": IMAGE,
        "namespace": "stock-ml-test",
        "image_pull_policy": "Always",
        "service_account_name": "stock-ml-runner",
        "env_from_secret": "stock-ml-env",
    },
    "task_settings": {
        "operator": "kubernetes_pod",
        "resources": {
            "requests": {"cpu": "500m", "memory": "1Gi"},
            "limits": {"cpu": "1", "memory": "2Gi"},
        },
    },
    "task_settings_by_tag": {
        # per resource: the training tasks keep the cpu request of every task
        "training": {
            "resources": {"requests": {"memory": "4Gi"}, "limits": {"cpu": "2", "memory": "8Gi"}}
        },
        "publish": {"operator": "python"},
    },
}
BASE_RESOURCES = POD_CONF["task_settings"]["resources"]
TRAINING_RESOURCES = {
    "requests": {"cpu": "500m", "memory": "4Gi"},
    "limits": {"cpu": "2", "memory": "8Gi"},
}
COMMAND = ["python", "-m", "stock_ml.airflow_pod"]
PIPELINES = {"daily": "daily", "training": "retraining", "backfill": "backfill"}

# Runs inside the Airflow environment: import the DAG files as the scheduler would, and describe
# each task's operator and, for pods, what the pod is made of.
DAGBAG_SCRIPT = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])

def pod(t):
    env = t.env_vars
    return {
        "image": t.image,
        "namespace": t.namespace,
        "image_pull_policy": t.image_pull_policy,
        "service_account_name": t.service_account_name,
        "env_from_secrets": [e.secret_ref.name for e in t.env_from or []],
        "resources": {
            "requests": t.container_resources.requests,
            "limits": t.container_resources.limits,
        },
        "cmds": t.cmds,
        "arguments": t.arguments,
        "env_vars": dict(env) if isinstance(env, dict) else {e.name: e.value for e in env},
    }

print(json.dumps({
    "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
    "dags": {
        d.dag_id: {
            t.task_id: {
                "operator": type(t).__name__,
                "timeout_s": t.execution_timeout and t.execution_timeout.total_seconds(),
                "priority_weight": t.priority_weight,
                "pod": pod(t) if type(t).__name__ == "KubernetesPodOperator" else None,
            }
            for t in d.tasks
        }
        for d in bag.dags.values()
    },
}))
"""


def _merge(into: dict, extra: dict) -> dict:
    for key, value in extra.items():
        into[key] = _merge(into.get(key, {}), value) if isinstance(value, dict) else value
    return into


@pytest.fixture(scope="module")
def pod_dags(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The scratch copy with pod tasks in its test env, its dev and test DAGs, an Airflow home."""
    base = tmp_path_factory.mktemp("airflow_pods")
    project = copy_project(base / "project")
    conf_path = project / "conf" / "test" / "airflow.yml"
    conf = yaml.safe_load(conf_path.read_text())
    conf_path.write_text(yaml.safe_dump(_merge(conf, {"default": POD_CONF}), sort_keys=False))
    dags = base / "dags"
    make_dags(project, dags, "dev test")
    home = base / "airflow_home"
    home.mkdir()
    env = airflow_env(home, dags)
    run([str(BIN / "airflow"), "db", "migrate"], cwd=base, env=env)
    return {"project": project, "dags": dags, "env": env, "cwd": base}


def _dagbag(pod_dags: dict, folder: Path) -> dict:
    result = run(
        [str(BIN / "python"), "-c", DAGBAG_SCRIPT, str(folder)],
        cwd=pod_dags["cwd"],
        env=pod_dags["env"],
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def dagbag(pod_dags: dict) -> dict:
    return _dagbag(pod_dags, pod_dags["dags"])


def _nodes(pod: dict) -> list[str]:
    arguments = pod["arguments"]
    return arguments[arguments.index("--nodes") + 1].split(",")


def test_pod_dags_import_without_errors(dagbag: dict) -> None:
    assert dagbag["import_errors"] == {}
    assert set(dagbag["dags"]) == {
        f"{env}_stock_ml_{group}" for env in ("dev", "test") for group in PIPELINES
    }


def test_each_pod_runs_its_tasks_nodes_with_kedro_in_the_project_image(dagbag: dict) -> None:
    """Every Kedro node of the test DAGs runs in exactly one task: a pod running `kedro run`
    for the task's nodes, or (publish-tagged nodes) a python task of the worker."""
    for group, pipeline_name in PIPELINES.items():
        tasks = dagbag["dags"][f"test_stock_ml_{group}"]
        nodes = {node.name: node.tags for node in register_pipelines()[pipeline_name].nodes}
        in_pods = []
        for task_id, task in tasks.items():
            if task["operator"] != "KubernetesPodOperator":
                continue
            pod = task["pod"]
            task_nodes = _nodes(pod)
            # kedro-airflow names a task after its nodes
            assert slugify("-".join(task_nodes)) == task_id
            assert pod["cmds"] == COMMAND
            assert pod["arguments"] == [
                "--env", "test", "--pipelines", pipeline_name, "--nodes", ",".join(task_nodes),
            ]  # fmt: skip
            assert pod["env_vars"] == {"STOCK_ML_RUNTIME_PARAMS": "{{ stock_ml_runtime_params() }}"}
            assert pod["image"] == IMAGE
            assert pod["namespace"] == "stock-ml-test"
            assert pod["image_pull_policy"] == "Always"
            assert pod["service_account_name"] == "stock-ml-runner"
            assert pod["env_from_secrets"] == ["stock-ml-env"]
            in_pods += task_nodes
        assert sorted(in_pods) == sorted(n for n, tags in nodes.items() if "publish" not in tags)
        python_tasks = {
            t for t, task in tasks.items() if task["operator"] != "KubernetesPodOperator"
        }
        publish_tasks = {slugify(n) for n, tags in nodes.items() if "publish" in tags}
        for task_id in publish_tasks:
            assert tasks[task_id]["operator"] == "_PythonDecoratedOperator"
        if group == "daily":  # the branch reads the verdict in the worker, then may trigger
            assert tasks["retrain-required"]["operator"] == "_BranchPythonDecoratedOperator"
            assert tasks["trigger-training"]["operator"] == "TriggerDagRunOperator"
            publish_tasks |= {"retrain-required", "trigger-training"}
        assert python_tasks == publish_tasks, group


def test_pod_resources_come_from_conf_by_node_tag(dagbag: dict) -> None:
    """task_settings' resources for every pod; the training tag's override them per resource,
    and the existing settings (timeout, priority) still apply by tag to the pods."""
    nodes = {node.name: node.tags for node in register_pipelines()["retraining"].nodes}
    training_tasks = 0
    for task in dagbag["dags"]["test_stock_ml_training"].values():
        if task["operator"] != "KubernetesPodOperator":
            continue
        if any("training" in nodes[n] for n in _nodes(task["pod"])):
            training_tasks += 1
            assert task["pod"]["resources"] == TRAINING_RESOURCES
            assert (task["timeout_s"], task["priority_weight"]) == (180 * 60, 10)
        else:
            assert task["pod"]["resources"] == BASE_RESOURCES
            assert (task["timeout_s"], task["priority_weight"]) == (60 * 60, 1)
    assert training_tasks >= 2
    search = next(t for t in dagbag["dags"]["test_stock_ml_training"] if "search-model" in t)
    assert dagbag["dags"]["test_stock_ml_training"][search]["pod"]["resources"] == (
        TRAINING_RESOURCES
    )


def test_dev_dags_keep_python_tasks(dagbag: dict) -> None:
    """The env without pod settings is unchanged: every Kedro task runs in the worker."""
    for group in PIPELINES:
        operators = {
            t: task["operator"] for t, task in dagbag["dags"][f"dev_stock_ml_{group}"].items()
        }
        kedro_tasks = {
            t: op for t, op in operators.items() if not t.startswith(("retrain", "trigger"))
        }
        assert set(kedro_tasks.values()) == {"_PythonDecoratedOperator"}, group


# Wrong settings, each in place of the one a generated DAG file holds from conf, and what the
# DAG's import error says.
BAD_SETTINGS = {
    "unknown_operator": (
        'TASK_SETTINGS = {"operator": "kubernetes"}',
        "operator 'kubernetes' is not one of ['python', 'kubernetes_pod']",
    ),
    "unknown_key": (
        'TASK_SETTINGS = {"operator": "kubernetes_pod", "resource": {}}',
        "unknown keys ['resource']",
    ),
    "unknown_resources_key": (
        'TASK_SETTINGS = {"operator": "kubernetes_pod", "resources": {"limit": {}}}',
        "resources: unknown keys ['limit'] (requests, limits)",
    ),
    "unknown_resource": (
        'TASK_SETTINGS = {"operator": "kubernetes_pod", "resources": {"limits": {"gpu": 1}}}',
        "resources.limits: unknown resources ['gpu']",
    ),
    "no_image": (
        'KUBERNETES = {"image": None, "namespace": "default"}',
        "airflow.yml kubernetes.image is required by plan-ingest-extract-prices",
    ),
    "unknown_kubernetes_key": (
        'KUBERNETES = {"image": "x", "namspace": "y"}',
        "airflow.yml kubernetes: unknown keys ['namspace']",
    ),
}


@pytest.fixture(scope="module")
def bad_settings_errors(pod_dags, tmp_path_factory) -> dict[str, str]:
    """The test backfill DAG file once per wrong setting, all imported by one DagBag."""
    folder = tmp_path_factory.mktemp("bad_settings")
    generated = (pod_dags["dags"] / "stock_ml_test_backfill_dag.py").read_text()
    for case, (line, _) in BAD_SETTINGS.items():
        name = line.split(" = ")[0]
        edited, count = re.subn(rf"^{name} = .*$", lambda _, line=line: line, generated, flags=re.M)
        assert count == 1
        (folder / f"{case}.py").write_text(edited)
    errors = _dagbag(pod_dags, folder)["import_errors"]
    return {Path(path).stem: error for path, error in errors.items()}


@pytest.mark.parametrize("case", sorted(BAD_SETTINGS))
def test_bad_pod_settings_fail_the_dag_import_naming_them(bad_settings_errors, case) -> None:
    assert set(bad_settings_errors) == set(BAD_SETTINGS), "every file fails to import"
    assert BAD_SETTINGS[case][1] in bad_settings_errors[case]


def _render(pod_dags: dict, dag_id: str, task_id: str, run_id: str) -> dict[str, str]:
    """`airflow tasks render`: each template field of the task as Airflow renders it for the run."""
    out = run(
        [str(BIN / "airflow"), "tasks", "render", dag_id, task_id, run_id],
        cwd=pod_dags["cwd"],
        env=pod_dags["env"],
    ).stdout
    parts = re.split(r"^# -+\n# property: (\w+)\n# -+\n", out, flags=re.MULTILINE)
    return {name: text.strip() for name, text in zip(parts[1::2], parts[2::2], strict=True)}


def test_a_rendered_pod_command_runs_the_tasks_nodes_with_the_runs_params(pod_dags) -> None:
    """A backfill run triggered with a conf full of commas, spaces and `=`: its first pod task
    rendered for that run, then its command run (the project's venv standing in for the image's
    python) in the scratch copy. The nodes get the DAG run's identity, Params and fixed params;
    the MLflow run of the task is the DAG run's child, with the audit as params."""
    project, env, cwd = pod_dags["project"], pod_dags["env"], pod_dags["cwd"]
    dag_id, task_id = "test_stock_ml_backfill", "plan-ingest-extract-prices"
    run_id = "manual__2021-04-01T12:00:00+00:00"
    note = "refetch March, vendor fixed it = ticket #42; 'quoted'"
    conf = {"backfill_start": "2021-03-01", "backfill_end": "2021-03-31", "note": note}
    run([str(BIN / "airflow"), "dags", "reserialize"], cwd=cwd, env=env)
    run(
        [
            str(BIN / "airflow"), "dags", "trigger", dag_id, "-r", run_id,
            "-l", "2021-04-01T12:00:00+00:00", "-c", json.dumps(conf),
        ],
        cwd=cwd,
        env=env,
    )  # fmt: skip
    rendered = _render(pod_dags, dag_id, task_id, run_id)
    assert rendered["image"] == IMAGE and rendered["namespace"] == "stock-ml-test"
    cmds, arguments = ast.literal_eval(rendered["cmds"]), ast.literal_eval(rendered["arguments"])
    assert cmds == COMMAND
    assert arguments == [
        "--env",
        "test",
        "--pipelines",
        "backfill",
        "--nodes",
        "plan_ingest,extract_prices",
    ]
    (variable,) = ast.literal_eval(rendered["env_vars"])
    assert variable["name"] == "STOCK_ML_RUNTIME_PARAMS"
    params = json.loads(variable["value"])
    audit = params.pop("airflow_audit")
    assert params == {
        "run_id": run_id,
        "run_date": "2021-04-01",
        "airflow_dag_id": dag_id,
        "airflow_task_id": task_id,
        "backfill_start": "2021-03-01",  # Params, from the trigger's conf
        "backfill_end": "2021-03-31",
        "ingest_mode": "backfill",  # the DAG's fixed runtime params
    }
    assert audit["dag_run_conf"] == conf
    assert audit["task"]["operator"] == "kubernetes_pod"
    assert audit["task"]["image"] == IMAGE
    assert audit["task"]["resources"] == BASE_RESOURCES
    assert audit["task"]["execution_timeout_s"] == 3600

    # The pod's command, as the container would run it: the image's `python` is this venv's.
    result = run(
        [str(BIN / "python"), *cmds[1:], *arguments],
        cwd=project,
        env=command_env(STOCK_ML_RUNTIME_PARAMS=variable["value"]),
    )
    assert (
        f"stock_ml audit: {json.dumps(json.loads(variable['value']), sort_keys=True)}"
        in result.stdout
    )

    root = project / "data" / "test_stock_data"
    (path,) = (root / "02_bronze" / "prices").rglob(f"run_id={safe_run_id(run_id)}.parquet")
    assert path.parent.name == "ingest_date=2021-04-01"  # run_date arrived
    bronze = pd.read_parquet(path)
    assert set(bronze["ingest_mode"]) == {"backfill"}
    assert sorted(set(bronze["ingest_chunk"])) == ["2021-03"]
    assert bronze["date"].between("2021-03-01", "2021-03-31").all()
    assert set(bronze["ingest_run_id"]) == {run_id}

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    (task_run,) = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        f"params.`airflow.run_id` = '{run_id}'",
    )
    assert task_run.info.run_name == task_id
    assert task_run.info.status == "FINISHED"
    logged = task_run.data.params
    assert logged["airflow.run_date"] == "2021-04-01"
    assert logged["airflow.dag_run_conf.note"] == note
    assert logged["airflow.task.operator"] == "kubernetes_pod"
    assert logged["airflow.task.resources.limits.memory"] == "2Gi"
    parent = client.get_run(task_run.data.tags["mlflow.parentRunId"])
    assert parent.info.run_name == f"{dag_id}/{run_id}"
