"""Model scope from conf: which scope an env declares, its per-symbol parameter blocks merged
after the env, and the Airflow sections expanded per symbol. Read through the project's config
loader, as a KedroSession does."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stock_ml import model_scope, settings
from stock_ml.model_scope import (
    PER_SYMBOL,
    POOLED,
    ModelScope,
    expand_symbol_sections,
    scope_from_parameters,
    symbol_key,
)


@pytest.fixture(autouse=True)
def _restore_active_loader():
    """Loaders created here must not decide the pipelines of a later test in this process."""
    saved = dict(model_scope._ACTIVE)
    yield
    model_scope._ACTIVE.clear()
    model_scope._ACTIVE.update(saved)


def _loader(conf: Path, env: str):
    return settings.CONFIG_LOADER_CLASS(str(conf), env=env, **settings.CONFIG_LOADER_ARGS)


def _per_symbol(conf: Path, env: str) -> None:
    (conf / env / "parameters_model_scope.yml").write_text(
        yaml.safe_dump({"model_scope": {"kind": "per_symbol"}})
    )


def test_every_env_is_pooled_by_default(conf) -> None:
    for env in ["dev", "test", "prod"]:
        assert scope_from_parameters(_loader(conf, env)["parameters"]) == ModelScope(POOLED)


def test_per_symbol_takes_the_enabled_universe(conf) -> None:
    _per_symbol(conf, "dev")
    scope = scope_from_parameters(_loader(conf, "dev")["parameters"])
    assert scope.kind == PER_SYMBOL
    # The 18 Warsaw symbols; the disabled us_markets group has none here.
    assert len(scope.symbols) == 18 and "AAPL" not in scope.symbols
    assert scope.namespaces["CDR"] == "per_symbol.cdr"


def test_an_unknown_kind_is_an_error(conf) -> None:
    (conf / "test" / "parameters_model_scope.yml").write_text("model_scope:\n  kind: pooledd\n")
    with pytest.raises(ValueError, match="model_scope.kind must be one of .*'pooledd'"):
        scope_from_parameters(_loader(conf, "test")["parameters"])


def test_symbols_sharing_a_name_part_are_an_error() -> None:
    universe = {"groups": {"x": {"calendar": "XNYS", "symbols": ["BRK.B", "BRK-B"]}}}
    with pytest.raises(ValueError, match=r"share the name part\(s\) \['brk_b'\]"):
        scope_from_parameters({"model_scope": {"kind": "per_symbol"}, "universe": universe})
    assert symbol_key("BRK.B") == "brk_b"


def test_per_symbol_blocks_are_the_envs_blocks_with_the_changes(conf) -> None:
    """Merged after the env: the test env's bootstrap rule and search profile survive, the
    per-symbol objective, top_k and gate set replace the pooled ones."""
    parameters = _loader(conf, "test")["parameters"]
    blocks = parameters["model_scope"]["per_symbol"]
    assert blocks["promotion"]["when_no_champion"] == "bootstrap"  # conf/test
    assert blocks["promotion"]["gate_set"] == "per_symbol"
    assert blocks["promotion"]["gate_sets"] == parameters["promotion"]["gate_sets"]
    assert blocks["training"]["search"]["profile"] == "comprehensive"  # conf/test
    assert blocks["training"]["search"]["objective"] == "roc_auc"
    assert parameters["training"]["search"]["objective"] == "rank_ic"  # pooled untouched
    assert blocks["training"]["evaluation"] == {**parameters["training"]["evaluation"], "top_k": 1}
    assert blocks["training"]["split"] == parameters["training"]["split"]
    prod = _loader(conf, "prod")["parameters"]["model_scope"]["per_symbol"]
    assert prod["training"]["search"]["profile"] == "production"


def test_airflow_symbol_sections_expand_per_symbol(conf) -> None:
    assert not {k for k in _loader(conf, "test")["airflow"] if k.startswith("training_")}
    _per_symbol(conf, "test")
    airflow = _loader(conf, "test")["airflow"]
    sections = {k: v for k, v in airflow.items() if k.startswith("training_")}
    assert set(sections) == {f"training_{s}" for s in ["aaa", "bbb", "ccc", "ddd", "eee", "fff"]}
    assert sections["training_ccc"]["dag_group"] == "training_ccc"
    assert "ccc model" in sections["training_ccc"]["description"]
    assert sections["training_ccc"]["params"] == airflow["retraining"]["params"]


def test_expansion_fills_nested_values() -> None:
    config = {"default": {"x": 1}, "t_{symbol}": {"a": ["{symbol}!"], "b": {"c": "{symbol}"}}}
    assert expand_symbol_sections(config, ModelScope(PER_SYMBOL, ("A", "B.C"))) == {
        "default": {"x": 1},
        "t_a": {"a": ["a!"], "b": {"c": "a"}},
        "t_b_c": {"a": ["b_c!"], "b": {"c": "b_c"}},
    }
    assert expand_symbol_sections(config, ModelScope(POOLED)) == {"default": {"x": 1}}


def test_a_per_symbol_trigger_block_applies_only_to_per_symbol_scopes() -> None:
    trigger = {
        "after_node": "decide",
        "key": "retrain_required",
        "dag_group": "training",
        "per_symbol": {
            "after_node": "collect",
            "key": "retrain_symbols",
            "dag_group": "t_{symbol}",
        },
    }
    config = {"daily": {"dag_group": "daily", "trigger": trigger}, "backfill": {"x": 1}}
    pooled = expand_symbol_sections(config, ModelScope(POOLED))
    assert pooled["daily"]["trigger"] == {
        "after_node": "decide",
        "key": "retrain_required",
        "dag_group": "training",
    }
    per_symbol = expand_symbol_sections(config, ModelScope(PER_SYMBOL, ("A", "B.C")))
    assert per_symbol["daily"] == {
        "dag_group": "daily",
        "trigger": {
            "after_node": "collect",
            "key": "retrain_symbols",
            "dag_group": "t_{symbol}",
            "symbols": {"A": "a", "B.C": "b_c"},
        },
    }
    assert per_symbol["backfill"] == pooled["backfill"] == {"x": 1}
