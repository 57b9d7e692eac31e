"""Ingest modes through real Kedro sessions: incremental, rerun, full, backfill.

The test env's synthetic source acts as a live feed seen on the run date, so a later run date
means new sessions, exactly as a vendor's file grows.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from stock_ml.calendars import exchange_sessions
from tests.integration.project import BIN, copy_project, run

pytestmark = pytest.mark.slow

SYMBOLS = 6  # conf/test: AAA..FFF
FIRST_SESSION = "2021-01-04"  # conf/base ingest.source.synthetic.start


def _kedro(project: Path, **params: str) -> None:
    pairs = ",".join(f"{key}={value}" for key, value in params.items())
    run(
        [
            str(BIN / "kedro"),
            "run",
            "--env",
            "test",
            "--pipelines",
            "ingest,silver",
            "--params",
            pairs,
        ],
        cwd=project,
    )


def _root(project: Path) -> Path:
    return project / "data" / "test_stock_data"


def _silver(project: Path) -> pd.DataFrame:
    versions = sorted((_root(project) / "03_silver" / "prices.parquet").iterdir())
    return pd.read_parquet(versions[-1] / "prices.parquet")


def _bronze(project: Path, run_date: str, run_id: str) -> pd.DataFrame:
    return pd.read_parquet(
        _root(project)
        / "02_bronze"
        / "prices"
        / f"ingest_date={run_date}"
        / f"run_id={run_id}.parquet"
    )


def _bronze_files(project: Path) -> list[str]:
    folder = _root(project) / "02_bronze" / "prices"
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*.parquet"))


def _sessions(start: str, end: str) -> int:
    return len(exchange_sessions("XWAR", start, end))


@pytest.fixture(scope="module")
def incremental_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Full run as of 2021-12-31, then incremental runs as of 2022-01-31."""
    project = copy_project(tmp_path_factory.mktemp("modes") / "project")
    _kedro(project, run_id="full-1", run_date="2021-12-31", ingest_mode="full")
    _kedro(project, run_id="inc-2", run_date="2022-01-31")
    return project


def test_full_run_stores_the_whole_history_it_sees(incremental_project: Path) -> None:
    bronze = _bronze(incremental_project, "2021-12-31", "full-1")
    assert len(bronze) == SYMBOLS * _sessions(FIRST_SESSION, "2021-12-31")
    assert set(bronze["ingest_mode"]) == {"full"}
    assert bronze["ingest_time"].str.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00").all()


def test_incremental_after_full_adds_exactly_the_new_sessions(incremental_project: Path) -> None:
    new = _bronze(incremental_project, "2022-01-31", "inc-2")
    january = exchange_sessions("XWAR", "2022-01-01", "2022-01-31")
    assert len(new) == SYMBOLS * len(january)
    assert sorted(set(pd.to_datetime(new["date"]))) == list(january)
    silver = _silver(incremental_project)
    assert len(silver) == SYMBOLS * _sessions(FIRST_SESSION, "2022-01-31")
    assert not silver.duplicated(["symbol", "date"]).any()
    by_run = silver.groupby("ingest_run_id")["date"].agg(["min", "max", "size"])
    assert by_run.loc["inc-2", "min"] == january[0]
    # Warsaw is closed on 31 December: the full run's last session is the 30th
    assert by_run.loc["full-1", "max"] == exchange_sessions("XWAR", "2021-12-01", "2021-12-31")[-1]


def test_a_second_identical_run_adds_nothing(incremental_project: Path) -> None:
    before = _silver(incremental_project)
    _kedro(incremental_project, run_id="inc-3", run_date="2022-01-31")
    assert _bronze(incremental_project, "2022-01-31", "inc-3").empty
    pd.testing.assert_frame_equal(_silver(incremental_project), before)


def test_rerunning_a_run_id_replaces_its_partition(incremental_project: Path) -> None:
    before_files = _bronze_files(incremental_project)
    before = _silver(incremental_project)
    first_attempt = _bronze(incremental_project, "2022-01-31", "inc-2")
    _kedro(incremental_project, run_id="inc-2", run_date="2022-01-31")
    assert _bronze_files(incremental_project) == before_files, "no new partition, none lost"
    again = _bronze(incremental_project, "2022-01-31", "inc-2")
    pd.testing.assert_frame_equal(
        again.drop(columns="ingest_time"), first_attempt.drop(columns="ingest_time")
    )
    pd.testing.assert_frame_equal(_silver(incremental_project), before)


def test_backfill_of_three_months_equals_the_full_run_in_that_range(
    incremental_project: Path, tmp_path: Path
) -> None:
    project = copy_project(tmp_path / "project")
    _kedro(
        project,
        run_id="backfill-1",
        run_date="2022-01-31",
        ingest_mode="backfill",
        backfill_start="2021-03-01",
        backfill_end="2021-05-31",
    )
    bronze = _bronze(project, "2022-01-31", "backfill-1")
    assert sorted(set(bronze["ingest_chunk"])) == ["2021-03", "2021-04", "2021-05"]
    backfilled = _silver(project).drop(columns="ingest_run_id")
    full = _silver(incremental_project)
    in_range = full[full["date"].between("2021-03-01", "2021-05-31")]
    pd.testing.assert_frame_equal(
        backfilled, in_range.drop(columns="ingest_run_id").reset_index(drop=True)
    )
    assert len(backfilled) == SYMBOLS * _sessions("2021-03-01", "2021-05-31")
