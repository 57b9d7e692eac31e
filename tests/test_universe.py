"""Exchange groups from conf."""

from __future__ import annotations

import pytest

from stock_ml.universe import (
    exchange_groups,
    in_scope,
    scope_symbols,
    symbol_calendars,
    symbol_groups,
    yahoo_tickers,
)

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


# --- one run's scope ----------------------------------------------------------------------------


def _enabled(universe: dict) -> dict[str, list[str]]:
    """Enabled group -> its symbols, as the scoped universe declares them."""
    return {g.name: list(g.symbols) for g in exchange_groups(universe) if g.enabled}


@pytest.mark.parametrize(
    "run",
    [{}, {"symbols": None, "exchange_groups": None}, {"symbols": [], "exchange_groups": ""}],
)
def test_a_run_without_a_scope_takes_the_whole_universe(run):
    assert in_scope(UNIVERSE, run) is UNIVERSE
    assert scope_symbols(UNIVERSE, run) is None


@pytest.mark.parametrize(
    "symbols", [["pko", "AAPL"], "PKO AAPL", "pko,aapl", ["PKO AAPL"], ["PKO", "PKO", "aapl"]]
)
def test_symbols_narrow_each_group_and_disable_the_groups_left_empty(symbols):
    scoped = in_scope(UNIVERSE, {"symbols": symbols})
    assert _enabled(scoped) == {"warsaw": ["PKO"], "us_markets": ["AAPL"]}
    assert scope_symbols(UNIVERSE, {"symbols": symbols}) == frozenset({"PKO", "AAPL"})
    assert yahoo_tickers(scoped) == {"PKO": "PKO", "AAPL": "AAPL"}
    assert symbol_calendars(scoped) == {"PKO": "XWAR", "AAPL": "XNYS"}
    only_pko = in_scope(UNIVERSE, {"symbols": ["PKO"]})
    assert _enabled(only_pko) == {"warsaw": ["PKO"]}
    assert only_pko["groups"]["us_markets"]["symbols"] == ["aapl"], "declared symbols kept"
    assert UNIVERSE["groups"]["warsaw"]["symbols"] == ["ACP", "PKO"], "conf is not modified"


def test_exchange_groups_select_whole_groups_and_symbols_narrow_them():
    assert _enabled(in_scope(UNIVERSE, {"exchange_groups": ["warsaw"]})) == {
        "warsaw": ["ACP", "PKO"]
    }
    both = {"exchange_groups": "warsaw us_markets", "symbols": ["ACP"]}
    assert _enabled(in_scope(UNIVERSE, both)) == {"warsaw": ["ACP"]}
    assert scope_symbols(UNIVERSE, both) == frozenset({"ACP"})


@pytest.mark.parametrize(
    ("run", "message"),
    [
        ({"symbols": ["PKO", "XYZ", "QQQ"]}, r"run.symbols: \['XYZ', 'QQQ'\] not in any enabled"),
        ({"symbols": ["7203"]}, r"\['7203'\] not in any enabled exchange group"),  # asia is off
        ({"exchange_groups": ["warsaw", "moon"]}, r"\['moon'\] not declared in universe.groups"),
        ({"exchange_groups": ["asia"]}, r"\['asia'\] disabled in this env's universe"),
        (
            {"exchange_groups": ["warsaw"], "symbols": ["AAPL"]},
            r"\['AAPL'\] not in the selected exchange groups \['warsaw'\]",
        ),
        ({"symbols": 7203}, "run.symbols must be a list of names or one string"),
    ],
)
def test_a_scope_outside_the_enabled_universe_is_an_error_naming_it(run, message):
    with pytest.raises(ValueError, match=message):
        in_scope(UNIVERSE, run)
