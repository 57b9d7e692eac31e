"""A real Airflow 3 deployment for tests: scheduler, dag-processor and api-server with the
LocalExecutor on a PostgreSQL metadata database, driven through the REST API (/api/v2).

What it takes, measured with Airflow 3.3.2 (see docs/deployment.md for the same settings in
production): psycopg 3 serves the metadata DB, but Airflow derives an asyncpg URL for its async
engine unless SQL_ALCHEMY_CONN_ASYNC names ``postgresql+psycopg_async``; LocalExecutor's task
processes reach the api-server's Execution API (EXECUTION_API_SERVER_URL) with JWTs that the
scheduler signs and the api-server checks (one JWT secret for both); the simple auth manager with
every user admin hands out a token at /auth/token; the dag-processor must rescan within seconds
(REFRESH_INTERVAL) or a new DAG file waits five minutes; the scheduler's log server port is
freed from its fixed 8793. Each service runs in its own process group and is stopped as one.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from cryptography.fernet import Fernet

from tests.integration.project import BIN, REPO

SERVICES = ("api-server", "scheduler", "dag-processor")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def airflow_env(home: Path, dags: Path, metadata_url: str, port: int) -> dict[str, str]:
    base_url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        KEDRO_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="1",
        AIRFLOW_HOME=str(home),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=metadata_url,
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC=metadata_url.replace(
            "+psycopg:", "+psycopg_async:"
        ),
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__PARALLELISM="2",  # the machine's cores
        AIRFLOW__CORE__FERNET_KEY=Fernet.generate_key().decode(),
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{base_url}/execution/",
        AIRFLOW__API__BASE_URL=base_url,
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__API__WORKERS="1",
        AIRFLOW__API__SECRET_KEY=secrets.token_hex(32),
        AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_hex(32),
        AIRFLOW__API_AUTH__JWT_ISSUER="stock_ml_test",
        AIRFLOW__CORE__AUTH_MANAGER=(
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="2",
        AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL="5",
        AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL="1",
        AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES="1",
        AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL="0",
        AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH=str(home / "bundles"),
        AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="1",
        AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK="False",
        AIRFLOW__LOGGING__BASE_LOG_FOLDER=str(home / "logs"),
        AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()),
    )
    return env


class AirflowStack:
    """``with AirflowStack(folder, metadata_url) as stack``: migrated DB, services healthy.

    ``preload``: install the project's airflow/airflow_local_settings.py, as docs/deployment.md
    says, so task processes start with the project's imports done.
    """

    def __init__(self, folder: Path, metadata_url: str, preload: bool = True) -> None:
        self.home, self.dags, self.logs = folder / "airflow_home", folder / "dags", folder / "logs"
        for path in (self.home, self.dags, self.logs, self.home / "config"):
            path.mkdir(parents=True, exist_ok=True)
        if preload:
            local_settings = REPO / "airflow" / "airflow_local_settings.py"
            (self.home / "config" / local_settings.name).write_text(local_settings.read_text())
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = airflow_env(self.home, self.dags, metadata_url, self.port)
        self.processes: dict[str, subprocess.Popen] = {}
        self.timings: dict[str, float] = {}
        self._token: str | None = None

    def __enter__(self) -> AirflowStack:
        try:
            started = time.monotonic()
            self.airflow("db", "migrate", timeout=600)
            self.timings["db_migrate_s"] = time.monotonic() - started
            started = time.monotonic()
            for name in SERVICES:
                with (self.logs / f"{name}.log").open("wb") as out:
                    self.processes[name] = subprocess.Popen(
                        [str(BIN / "airflow"), name],
                        cwd=self.home,
                        env=self.env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        start_new_session=True,
                    )
            self._wait_healthy(timeout=240)
            self.timings["services_ready_s"] = time.monotonic() - started
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self, grace: float = 30) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(1.0, deadline - time.monotonic()))
            # what the service started (executor workers, task runners) goes with it
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        self.processes = {}

    def airflow(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [str(BIN / "airflow"), *args],
            cwd=self.home,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if result.returncode != 0:
            tail = "\n".join((result.stdout + "\n" + result.stderr).splitlines()[-40:])
            raise AssertionError(f"airflow {' '.join(args)} exited {result.returncode}:\n{tail}")
        return result

    def http(self, method: str, path: str, body: dict | None = None, auth: bool = True):
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        if auth:
            headers["Authorization"] = f"Bearer {self._bearer()}"
        request = urllib.request.Request(
            self.base_url + path, data=data, headers=headers, method=method
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - localhost
            raw = response.read()
            return json.loads(raw) if raw else None

    def _bearer(self) -> str:
        if self._token is None:
            self._token = self.http("GET", "/auth/token", auth=False)["access_token"]
        return self._token

    def _check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                tail = (self.logs / f"{name}.log").read_text(errors="replace").splitlines()[-40:]
                raise AssertionError(f"{name} exited {process.returncode}:\n" + "\n".join(tail))

    def _wait_healthy(self, timeout: float) -> None:
        deadline, last = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                last = self.http("GET", "/api/v2/monitor/health", auth=False)
                parts = ("metadatabase", "scheduler", "dag_processor")
                if all((last.get(part) or {}).get("status") == "healthy" for part in parts):
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
                pass
            time.sleep(0.5)
        raise AssertionError(f"Airflow not healthy after {timeout} s: {last}")

    def wait_for_dags(self, dag_ids: list[str], timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            errors = self.http("GET", "/api/v2/importErrors")
            if errors.get("total_entries"):
                raise AssertionError(f"DAG import errors: {errors}")
            known = {d["dag_id"] for d in self.http("GET", "/api/v2/dags?limit=100")["dags"]}
            if set(dag_ids) <= known:
                return
            time.sleep(1)
        raise AssertionError(f"DAGs {dag_ids} not parsed after {timeout} s")

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.http("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": paused})

    def trigger(self, dag_id: str, logical_date: str | None = None, conf: dict | None = None):
        self.set_paused(dag_id, False)
        body = {"logical_date": logical_date, "conf": conf or {}}
        return self.http("POST", f"/api/v2/dags/{dag_id}/dagRuns", body)["dag_run_id"]

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 1200) -> str:
        deadline, state = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            self._check_alive()
            state = self.http("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"]
            if state in ("success", "failed"):
                return state
            time.sleep(2)
        raise AssertionError(f"{dag_id} run {run_id} still {state} after {timeout} s")

    def runs(self, dag_id: str) -> list[dict]:
        return self.http("GET", f"/api/v2/dags/{dag_id}/dagRuns")["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=100"
        return {ti["task_id"]: ti for ti in self.http("GET", path)["task_instances"]}
