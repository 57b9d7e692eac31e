"""The env's universe: exchange groups declared in conf, each with its calendar and symbols.

``universe.groups.<name>`` = {enabled, calendar (exchange-calendars name), timezone, priority,
symbols, yahoo_suffix}. Disabling a group in conf removes its symbols from the run: ingest does
not read them, silver treats them as unknown, health does not expect them.

One run can work on a subset (``in_scope``): ``run.symbols`` and/or ``run.exchange_groups`` (runtime
params ``symbols`` / ``exchange_groups``, Airflow Params of the daily and backfill DAGs). Ingest
reads, health expects, inference scores and publish writes only those; silver still judges rows
against the whole universe and keeps every other symbol's stored rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class ExchangeGroup:
    name: str
    calendar: str
    timezone: str
    priority: int
    symbols: tuple[str, ...]
    enabled: bool
    yahoo_suffix: str = ""  # Yahoo Finance ticker = symbol + suffix (".WA" for Warsaw)


def exchange_groups(universe: dict) -> list[ExchangeGroup]:
    """All declared groups, by priority then name."""
    groups = [
        ExchangeGroup(
            name=name,
            calendar=str(spec["calendar"]),
            timezone=str(spec.get("timezone", "UTC")),
            priority=int(spec.get("priority", 100)),
            symbols=tuple(str(s).upper() for s in spec.get("symbols", [])),
            enabled=bool(spec.get("enabled", True)),
            yahoo_suffix=str(spec.get("yahoo_suffix", "")),
        )
        for name, spec in universe["groups"].items()
    ]
    return sorted(groups, key=lambda g: (g.priority, g.name))


def symbol_calendars(universe: dict) -> dict[str, str]:
    """Symbol → exchange calendar over enabled groups; a symbol in two of them is an error."""
    calendars: dict[str, str] = {}
    owner: dict[str, str] = {}
    for group in exchange_groups(universe):
        if not group.enabled:
            continue
        for symbol in group.symbols:
            if symbol in owner:
                raise ValueError(
                    f"universe: {symbol} is in enabled groups {owner[symbol]!r} and {group.name!r}"
                )
            owner[symbol], calendars[symbol] = group.name, group.calendar
    return calendars


def symbol_groups(universe: dict, enabled: bool) -> dict[str, str]:
    """Symbol → group name, over the enabled (or the disabled) groups."""
    return {
        symbol: group.name
        for group in exchange_groups(universe)
        if group.enabled == enabled
        for symbol in group.symbols
    }


def yahoo_tickers(universe: dict) -> dict[str, str]:
    """Symbol → Yahoo Finance ticker over the enabled groups (symbol + the group's suffix)."""
    return {
        symbol: symbol + group.yahoo_suffix
        for group in exchange_groups(universe)
        if group.enabled
        for symbol in group.symbols
    }


# --- One run's scope: the subset of the universe a trigger names (run.symbols, exchange_groups)

_SEPARATORS = re.compile(r"[\s,]+")


def _names(value: object, key: str) -> tuple[str, ...]:
    """A scope key's names in order, without repeats: ``value`` is None, a list of names, or one
    string of names separated by spaces or commas (``--params "symbols=AAA CCC"``)."""
    if value is None:
        return ()
    if isinstance(value, str):
        items: list[object] = [value]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise ValueError(
            f"run.{key} must be a list of names or one string of names separated by spaces or "
            f"commas, got {value!r}"
        )
    names = [name for item in items for name in _SEPARATORS.split(str(item)) if name]
    return tuple(dict.fromkeys(names))


def run_scope(run: dict) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(symbols, exchange groups) the run is narrowed to: symbols upper-cased, both empty when
    the run takes the whole universe."""
    symbols = tuple(dict.fromkeys(s.upper() for s in _names(run.get("symbols"), "symbols")))
    return symbols, _names(run.get("exchange_groups"), "exchange_groups")


def in_scope(universe: dict, run: dict) -> dict:
    """The universe narrowed to this run's scope (``run.symbols`` and/or ``run.exchange_groups``).

    Groups not selected are disabled; with symbols, each selected group keeps only the named ones
    (a group left with none is disabled). Without either key the universe is returned unchanged.
    A scope only narrows: a group that is not declared, or is disabled in conf, and a symbol that
    is in no enabled group (or in none of the selected groups) are errors naming them.
    """
    symbols, groups = run_scope(run)
    if not symbols and not groups:
        return universe
    declared = {group.name: group for group in exchange_groups(universe)}
    unknown = [name for name in groups if name not in declared]
    if unknown:
        raise ValueError(
            f"run.exchange_groups: {unknown} not declared in universe.groups "
            f"(declared: {sorted(declared)})"
        )
    disabled = [name for name in groups if not declared[name].enabled]
    if disabled:
        raise ValueError(
            f"run.exchange_groups: {disabled} disabled in this env's universe; a run's scope "
            "can only narrow the enabled groups"
        )
    selected = set(groups) or {name for name, group in declared.items() if group.enabled}
    owner = symbol_groups(universe, enabled=True)
    outside = [symbol for symbol in symbols if symbol not in owner]
    if outside:
        raise ValueError(f"run.symbols: {outside} not in any enabled exchange group")
    elsewhere = [symbol for symbol in symbols if owner[symbol] not in selected]
    if elsewhere:
        raise ValueError(
            f"run.symbols: {elsewhere} not in the selected exchange groups {sorted(selected)}"
        )
    narrowed = {}
    for name, declared_spec in universe["groups"].items():
        spec = dict(declared_spec)
        kept = [s for s in spec.get("symbols", []) if not symbols or str(s).upper() in symbols]
        if name in selected and kept:
            spec["symbols"] = kept
        else:
            spec["enabled"] = False
        narrowed[name] = spec
    return {**universe, "groups": narrowed}


def scope_symbols(universe: dict, run: dict) -> frozenset[str] | None:
    """The symbols this run works on, or None when it is not narrowed (the whole universe)."""
    if run_scope(run) == ((), ()):
        return None
    return frozenset(symbol_groups(in_scope(universe, run), enabled=True))
