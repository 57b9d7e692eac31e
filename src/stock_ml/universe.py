"""The env's universe: exchange groups declared in conf, each with its calendar and symbols.

``universe.groups.<name>`` = {enabled, calendar (exchange-calendars name), timezone, priority,
symbols, yahoo_suffix}. Disabling a group in conf removes its symbols from the run: ingest does
not read them, silver treats them as unknown, health does not expect them.
"""

from __future__ import annotations

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
