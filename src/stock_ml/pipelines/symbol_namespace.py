"""One stage's nodes as one symbol's Kedro namespaced pipeline (model_scope per_symbol).

A symbol's model lives under ``per_symbol.<symbol>``: its registered model, aliases and
promotion history are ``per_symbol.<symbol>.<name>`` (the ``per_symbol.{symbol}.*`` catalog
factories). Training and promotion are that namespace's nodes. Scoring and monitoring, which sit
on either side of the shared prediction log, are their own namespaces
(``per_symbol_inference.<symbol>``, ``per_symbol_monitoring.<symbol>``) reading the model's
datasets by their ``per_symbol.<symbol>.*`` names: one namespace spanning both would be
"interrupted" by the pooled nodes between them (Kedro warns, and a collapsed namespace in
kedro-viz would loop back into itself).

Every other dataset of the stage is namespaced (kept in memory) except the ``shared`` ones,
which every symbol reads as they are (the gold model input, the performance table...).
Parameters are never namespaced: those of the ``per_symbol_blocks`` (``training``,
``promotion``) are read from ``model_scope.per_symbol``, the env's blocks with the per-symbol
changes merged in (stock_ml.model_scope); the rest are shared.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial, update_wrapper

from kedro.pipeline import Pipeline

PER_SYMBOL_TAG = "per_symbol"
PER_SYMBOL_PARAMETERS = "model_scope.per_symbol"


def bind_symbol(func: Callable, symbol: str) -> Callable:
    """``func`` with ``symbol=symbol`` bound, keeping its name (Kedro names nodes after it)."""
    return update_wrapper(partial(func, symbol=symbol), func)


def bind_symbols(func: Callable, namespaces: dict[str, str]) -> Callable:
    """``func`` with ``symbols`` bound to the symbols of ``namespaces``, in their order: a node
    collecting one input per symbol's namespace, in the same order, names what it collects."""
    return update_wrapper(partial(func, symbols=tuple(namespaces)), func)


def stage_namespace(model_namespace: str, stage: str) -> str:
    """``per_symbol.aaa`` → ``per_symbol_<stage>.aaa``: a stage's own namespace for a symbol."""
    top, _, symbol = model_namespace.partition(".")
    return f"{top}_{stage}.{symbol}"


def namespaced_for_symbol(
    stage: Pipeline,
    namespace: str,
    shared: Iterable[str],
    per_symbol_blocks: Iterable[str] = (),
    model_datasets: Iterable[str] = (),
    model_namespace: str | None = None,
) -> Pipeline:
    """``stage`` as the namespaced pipeline ``namespace``; ``shared`` datasets read as they are,
    ``model_datasets`` read and written as ``<model_namespace>.<name>``."""
    blocks = set(per_symbol_blocks)
    names = (i.removeprefix("params:") for i in stage.inputs() if i.startswith("params:"))
    parameters = {
        name: f"{PER_SYMBOL_PARAMETERS}.{name}" if name.split(".")[0] in blocks else name
        for name in names
    }
    model = {name: f"{model_namespace or namespace}.{name}" for name in model_datasets}
    inputs = {name: name for name in set(shared) & stage.inputs()}
    inputs |= {name: model[name] for name in model if name in stage.inputs()}
    return Pipeline(
        stage,
        namespace=namespace,
        inputs=inputs,
        outputs={name: model[name] for name in model if name in stage.outputs()},
        parameters=parameters,
        tags=[PER_SYMBOL_TAG],
    )
