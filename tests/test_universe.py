"""Exchange groups from conf."""

from __future__ import annotations

import pytest

from stock_ml.universe import exchange_groups, symbol_calendars, symbol_groups

UNIVERSE = {
    "groups": {
        "us_markets": {"calendar": "XNYS", "priority": 2, "symbols": ["aapl"], "enabled": True},
        "warsaw": {"calendar": "XWAR", "priority": 1, "symbols": ["ACP", "PKO"]},
        "asia": {"calendar": "XTKS", "priority": 3, "symbols": ["7203"], "enabled": False},
    }
}


def test_groups_sorted_by_priority_with_defaults():
    groups = exchange_groups(UNIVERSE)
    assert [g.name for g in groups] == ["warsaw", "us_markets", "asia"]
    assert groups[0].enabled and groups[0].timezone == "UTC"
    assert groups[1].symbols == ("AAPL",), "symbols are upper-cased"


def test_only_enabled_groups_give_calendars():
    assert symbol_calendars(UNIVERSE) == {"ACP": "XWAR", "PKO": "XWAR", "AAPL": "XNYS"}
    assert symbol_groups(UNIVERSE, enabled=False) == {"7203": "asia"}


def test_a_symbol_in_two_enabled_groups_is_an_error():
    clash = {"groups": {**UNIVERSE["groups"], "dup": {"calendar": "XNYS", "symbols": ["PKO"]}}}
    with pytest.raises(ValueError, match="PKO is in enabled groups 'warsaw' and 'dup'"):
        symbol_calendars(clash)
