"""The Yahoo source through a real Kedro session (in-process, so the network can be replayed).

conf/prod reads Yahoo; here the test env is pointed at it with runtime params, over two Warsaw
tickers and the recorded March 2022 (tests/data/yahoo/). Ingest → bronze → silver run for real;
only curl_cffi's request is replaced by the recording.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from stock_ml.calendars import exchange_sessions
from tests.integration.project import copy_project
from tests.yahoo_replay import YahooReplay

pytestmark = pytest.mark.slow

YAHOO_RUN = {
    "ingest": {"source": {"kind": "yahoo", "yahoo": {"history_start": "2022-03-01"}}},
    "universe": {"groups": {"warsaw": {"symbols": ["PKO", "KGH"], "yahoo_suffix": ".WA"}}},
}
CHART = "https://query2.finance.yahoo.com/v8/finance/chart/{}"


def _run(project: Path, run_id: str) -> None:
    with KedroSession.create(
        project_path=project,
        env="test",
        runtime_params={"run_id": run_id, "run_date": "2022-03-31", **YAHOO_RUN},
    ) as session:
        session.run(pipeline_names=["ingest", "silver"])
    while mlflow.active_run():
        mlflow.end_run()


def _only(folder: Path, run_id: str) -> pd.DataFrame:
    (path,) = folder.rglob(f"run_id={run_id}.parquet")
    return pd.read_parquet(path)


def test_yahoo_month_lands_in_bronze_and_silver_and_a_rerun_asks_for_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, yahoo: YahooReplay
) -> None:
    project = copy_project(tmp_path / "project")
    monkeypatch.chdir(project)
    bootstrap_project(project)
    root = project / "data" / "test_stock_data"

    _run(project, "yahoo-1")
    bronze = _only(root / "02_bronze" / "prices", "yahoo-1")
    sessions = exchange_sessions("XWAR", "2022-03-01", "2022-03-31")
    assert bronze.groupby("symbol").size().to_dict() == {"KGH": len(sessions), "PKO": len(sessions)}
    assert set(bronze["source"]) == {"yahoo"}
    assert set(bronze["source_file"]) == {"yahoo:PKO.WA", "yahoo:KGH.WA"}
    monthly = [q for q in yahoo.requests_to(CHART.format("PKO.WA")) if "period1" in q]
    assert len(monthly) == 1, "one request per ticker for the whole window"

    quarantine = _only(root / "03_silver" / "quarantine", "yahoo-1")
    health = _only(root / "03_silver" / "data_health", "yahoo-1")
    (silver_version,) = (root / "03_silver" / "prices.parquet").iterdir()
    silver = pd.read_parquet(silver_version / "prices.parquet")
    # the recording has nulls (Yahoo sends them): PKO's close of 15 March, KGH's bar of 22 March
    assert sorted(
        zip(quarantine["symbol"], quarantine["date"], quarantine["reason"], strict=True)
    ) == [
        ("KGH", "2022-03-22", "missing_close"),
        ("PKO", "2022-03-15", "missing_close"),
    ]
    kgh = quarantine.set_index("symbol").loc["KGH", "reasons"]
    assert set(kgh.split(";")) == {f"missing_{f}" for f in ("open", "high", "low", "close")}
    assert len(silver) == 2 * len(sessions) - 2
    assert health["rows_read"].sum() == len(bronze) == len(silver) + len(quarantine)

    requests_before = len(yahoo.requests)
    _run(project, "yahoo-2")
    assert _only(root / "02_bronze" / "prices", "yahoo-2").empty
    chart_requests = [r for r in yahoo.requests[requests_before:] if "/v8/finance/chart/" in r[1]]
    assert chart_requests == [], "stored through the run date: incremental asks Yahoo for nothing"
