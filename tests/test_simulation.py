"""The simulation driver's scenario files (the month itself: tests/integration)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from stock_ml.simulation import load_scenario
from stock_ml.synthetic import generate_ohlcv

REPO = Path(__file__).resolve().parents[1]


def test_a_scenario_without_its_dates_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.yml"
    path.write_text(yaml.safe_dump({"env": "test", "start": "2022-03-01"}))
    with pytest.raises(ValueError, match=r"s.yml: scenario needs keys \['calendar', 'end'\]"):
        load_scenario(path)


def test_every_shipped_scenario_runs_on_the_generator_it_configures() -> None:
    scenarios = sorted((REPO / "conf" / "scenarios").glob("*.yml"))
    assert scenarios, "conf/scenarios ships at least the regime-shift month"
    for path in scenarios:
        scenario = load_scenario(path)
        regimes = scenario["params"]["ingest"]["source"]["synthetic"]["regimes"]
        prices = generate_ohlcv(
            ["AAA", "BBB", "CCC", "DDD", "EEE", "FFF"], "2021-01-04", 320, 7, regimes=regimes
        )
        assert prices["date"].max() >= pd.Timestamp(scenario["end"]), path.name
