"""Model scope: one pooled model, or one model per symbol of the env's universe.

``model_scope.kind`` (parameters_training.yml) is env conf, yet Kedro's ``register_pipelines()``
takes no env: the pipelines a project registers are the same for every env. A per-symbol
training pipeline exists once per symbol of *the env's* universe, so the registry needs the
env's parameters. The project's config loader (``StockMLConfigLoader``) is created by every
KedroSession before it touches the pipelines (``session.run``, ``kedro airflow create``,
``kedro viz``), and records itself here; ``register_pipelines`` asks it for the scope. Without
one (a bare ``register_pipelines()`` call), the scope is pooled.

Symbol → namespace: ``per_symbol.<symbol in lower case>``, non-alphanumerics as ``_`` (a Kedro
namespace is dot-separated, so ``BRK.B`` becomes ``brk_b``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from stock_ml.universe import symbol_calendars

POOLED = "pooled"
PER_SYMBOL = "per_symbol"
KINDS = (POOLED, PER_SYMBOL)
NAMESPACE = "per_symbol"

_ACTIVE: dict[str, Any] = {}  # "loader": the config loader of the latest session


@dataclass(frozen=True)
class ModelScope:
    kind: str
    symbols: tuple[str, ...] = ()

    @property
    def namespaces(self) -> dict[str, str]:
        """Symbol → its pipelines' namespace, e.g. ``AAA`` → ``per_symbol.aaa``."""
        return {symbol: f"{NAMESPACE}.{symbol_key(symbol)}" for symbol in self.symbols}


def symbol_key(symbol: str) -> str:
    """The symbol as a name part: namespace, pipeline name, registered model and DAG id."""
    return re.sub(r"[^0-9a-z]+", "_", symbol.lower()).strip("_")


def scope_from_parameters(parameters: dict) -> ModelScope:
    """The scope a set of parameters declares; per_symbol takes the enabled universe's symbols."""
    kind = str(parameters.get("model_scope", {}).get("kind", POOLED))
    if kind not in KINDS:
        raise ValueError(f"model_scope.kind must be one of {list(KINDS)}, got {kind!r}")
    if kind == POOLED:
        return ModelScope(POOLED)
    symbols = tuple(sorted(symbol_calendars(parameters["universe"])))
    keys = [symbol_key(symbol) for symbol in symbols]
    clashes = sorted({key for key in keys if keys.count(key) > 1})
    if clashes:
        raise ValueError(f"model_scope per_symbol: symbols share the name part(s) {clashes}")
    return ModelScope(PER_SYMBOL, symbols)


def with_per_symbol_blocks(parameters: dict) -> dict:
    """``model_scope.per_symbol`` as whole blocks: each of its top-level keys (``training``,
    ``promotion``) is the env's own block with the per-symbol keys merged over it, recursively.

    Done here, after Kedro has merged base and the run env, because an interpolation in base
    (``${training.search}``) would resolve against base alone and lose the env's changes (the
    test env's bootstrap, prod's search profile)."""
    from omegaconf import OmegaConf

    scope = parameters.get("model_scope")
    if not scope or not scope.get("per_symbol"):
        return parameters
    blocks = {
        name: OmegaConf.to_container(
            OmegaConf.merge(OmegaConf.create(parameters.get(name, {})), OmegaConf.create(changes))
        )
        for name, changes in scope["per_symbol"].items()
    }
    return {**parameters, "model_scope": {**scope, "per_symbol": blocks}}


def record_active_loader(loader: Any) -> None:
    """Called by the project's config loader on creation: the env whose pipelines to register.

    A new env or conf folder in the same process (tests, notebooks) resets Kedro's cached
    pipelines, so the next access registers that env's."""
    previous = _ACTIVE.get("loader")
    _ACTIVE["loader"] = loader
    if previous is None or (previous.conf_source, previous.env) != (loader.conf_source, loader.env):
        from kedro.framework.project import PACKAGE_NAME, pipelines

        if PACKAGE_NAME:
            pipelines.configure(f"{PACKAGE_NAME}.pipeline_registry")


def active_scope() -> ModelScope:
    """The scope of the env whose session is being created; pooled when there is none."""
    if "loader" not in _ACTIVE:
        return ModelScope(POOLED)
    return scope_from_parameters(_ACTIVE["loader"]["parameters"])


def zip_symbols(values: tuple, symbols: tuple[str, ...], what: str) -> dict[str, Any]:
    """A collecting node's inputs (one per symbol's namespace, in ``symbols``' order) by symbol."""
    if len(values) != len(symbols):
        raise ValueError(f"{len(values)} {what} for {len(symbols)} symbols")
    return dict(zip(symbols, values, strict=True))


SYMBOL_PLACEHOLDER = "{symbol}"


def expand_symbol_sections(config: dict, scope: ModelScope) -> dict:
    """airflow.yml sections named with ``{symbol}`` (like a dataset factory) become one section
    per symbol of a per_symbol scope, ``{symbol}`` replaced in the name and in string values;
    pooled scopes drop them. kedro-airflow looks a DAG's section up by its pipeline's exact name.
    A ``trigger`` with a ``per_symbol`` block takes it in a per_symbol scope (the daily DAG
    triggers each symbol's training DAG)."""

    def substitute(value: Any, key: str) -> Any:
        if isinstance(value, str):
            return value.replace(SYMBOL_PLACEHOLDER, key)
        if isinstance(value, dict):
            return {k: substitute(v, key) for k, v in value.items()}
        if isinstance(value, list):
            return [substitute(v, key) for v in value]
        return value

    expanded = {
        name: _scoped_trigger(section, scope)
        for name, section in config.items()
        if SYMBOL_PLACEHOLDER not in name
    }
    for name, section in config.items():
        if SYMBOL_PLACEHOLDER in name:
            for symbol in scope.symbols:
                key = symbol_key(symbol)
                expanded[name.replace(SYMBOL_PLACEHOLDER, key)] = substitute(section, key)
    return expanded


def _scoped_trigger(section: Any, scope: ModelScope) -> Any:
    """A section's ``trigger.per_symbol`` block: merged over its trigger in a per_symbol scope,
    with ``symbols`` (symbol → name part) for the template to write one trigger per symbol's
    DAG; dropped in a pooled scope."""
    trigger = section.get("trigger") if isinstance(section, dict) else None
    if not isinstance(trigger, dict) or PER_SYMBOL not in trigger:
        return section
    pooled = {key: value for key, value in trigger.items() if key != PER_SYMBOL}
    if scope.kind != PER_SYMBOL:
        return {**section, "trigger": pooled}
    symbols = {symbol: symbol_key(symbol) for symbol in scope.symbols}
    return {**section, "trigger": {**pooled, **trigger[PER_SYMBOL], "symbols": symbols}}


def dag_pipelines(conf_source: str, env: str, groups: list[str]) -> list[str]:
    """The pipelines ``make dags`` converts for an env: the groups, then per_symbol's
    ``training_<symbol>`` pipelines (one DAG per symbol of the env's universe)."""
    from stock_ml.config_loader import StockMLConfigLoader
    from stock_ml.settings import CONFIG_LOADER_ARGS

    loader = StockMLConfigLoader(conf_source=conf_source, env=env, **CONFIG_LOADER_ARGS)
    scope = scope_from_parameters(loader["parameters"])
    return [*groups, *(f"training_{symbol_key(symbol)}" for symbol in scope.symbols)]


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Print the pipelines to convert to DAGs.")
    parser.add_argument("--env", required=True)
    parser.add_argument("--conf-source", default="conf")
    parser.add_argument("--groups", default="daily,retraining,backfill")
    arguments = parser.parse_args()
    groups = arguments.groups.split(",")
    print(",".join(dag_pipelines(arguments.conf_source, arguments.env, groups)))
