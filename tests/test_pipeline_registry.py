"""The registered pipelines: seven stages, the groups, rollback and the serving store's init."""

from __future__ import annotations

import pytest
from kedro.framework.project import configure_project

from stock_ml.model_scope import PER_SYMBOL, POOLED, ModelScope
from stock_ml.pipeline_registry import register_pipelines

STAGES = [
    "ingest",
    "silver",
    "feature_store",
    "training",
    "inference",
    "monitoring",
    "publish",
]


@pytest.fixture(scope="module")
def pipelines():
    configure_project("stock_ml")
    return register_pipelines(ModelScope(POOLED))


PUBLISH_DATA = {"publish_data_health", "publish_quarantine"}


def _names(pipeline) -> set[str]:
    return {node.name for node in pipeline.nodes}


def test_registered_pipeline_names(pipelines):
    groups = {"daily", "retraining", "backfill", "rollback", "rollout_start", "__default__"}
    assert set(pipelines) == {*STAGES, *groups, "init_serving_store"}


def test_the_serving_store_is_initialised_on_demand_only(pipelines):
    assert _names(pipelines["init_serving_store"]) == {"serving_store_ddl"}
    assert pipelines["init_serving_store"].all_outputs() == {"serving_store_schema"}
    for group in ["__default__", "daily", "retraining", "backfill"]:
        assert "serving_store_ddl" not in _names(pipelines[group]), group


def test_stage_pipelines_hold_their_nodes(pipelines):
    assert _names(pipelines["ingest"]) == {"plan_ingest", "extract_prices"}
    assert _names(pipelines["silver"]) == {"validate_prices", "merge_silver", "data_health"}
    assert _names(pipelines["feature_store"]) == {
        "build_features",
        "build_labels",
        "build_model_input",
    }
    assert _names(pipelines["training"]) == {
        "split_by_date",
        "search_model",
        "log_search_trials",
        "fit_model",
        "score_holdout",
        "evaluate_holdout",
        "data_lineage",
        "register_challenger",
        "log_run_params",
        "decide_promotion",
        "model_card",
        "start_rollout",
    }
    assert _names(pipelines["rollback"]) == {"rollback_champion"}
    assert _names(pipelines["rollout_start"]) == {"plan_manual_rollout", "start_manual_rollout"}
    assert _names(pipelines["inference"]) == {"score_latest_sessions", "export_for_api"}
    assert _names(pipelines["monitoring"]) == {
        "matured_performance",
        "drift_report",
        "plot_monitoring_history",
        "decide_retraining",
        "promote_after_shadow",
        "advance_rollout",
        "plot_rollout_history",
    }
    for stage in STAGES:
        tags = {stage, "promotion", "rollout"} if stage in {"training", "monitoring"} else {stage}
        assert all(tags & node.tags for node in pipelines[stage].nodes), stage


def test_daily_refreshes_data_scores_and_monitors_but_never_trains(pipelines):
    daily = pipelines["daily"]
    assert not _names(daily) & _names(pipelines["training"])
    assert not any("training" in node.tags for node in daily.nodes)
    assert _names(daily) == set().union(
        *(
            _names(pipelines[s])
            for s in ["ingest", "silver", "feature_store", "inference", "monitoring", "publish"]
        )
    )
    # The champion is read from the registry, never produced in the daily run.
    assert "champion_model@serving" in daily.inputs()
    assert "champion_model@update" not in daily.all_outputs()


def test_retraining_refreshes_data_and_trains_but_never_scores(pipelines):
    retraining = pipelines["retraining"]
    assert not _names(retraining) & _names(pipelines["inference"])
    assert not any("inference" in node.tags for node in retraining.nodes)
    assert not _names(retraining) & _names(pipelines["monitoring"])
    assert _names(retraining) == set().union(
        *(_names(pipelines[s]) for s in ["ingest", "silver", "feature_store", "training"]),
        PUBLISH_DATA,
    )
    # it registers a challenger and may move the champion, never reads it to serve
    assert {"challenger_model", "champion_model@update"} <= retraining.all_outputs()
    assert "champion_model@serving" not in retraining.all_inputs()


def test_backfill_refreshes_the_stores_only(pipelines):
    assert _names(pipelines["backfill"]) == set().union(
        *(_names(pipelines[s]) for s in ["ingest", "silver", "feature_store"]), PUBLISH_DATA
    )


def test_publish_serves_each_table_from_its_stage(pipelines):
    """Every run that ingests publishes its data health and quarantine; daily runs also publish
    their predictions, performance and drift (the rows of parameters_serving_store.yml's tables)."""
    publish = pipelines["publish"]
    assert publish.all_outputs() == {
        "serving_predictions",
        "serving_performance_log",
        "serving_monitoring_drift",
        "serving_data_health",
        "serving_quarantine",
    }
    assert _names(publish.only_nodes_with_tags("publish_data")) == PUBLISH_DATA
    assert {"predictions", "monitoring_performance", "silver_data_health"} <= publish.inputs()


def test_incremental_state_is_read_through_a_view_not_a_cycle(pipelines):
    """Ingest reads what silver stores under another name: Kedro's graph stays acyclic."""
    default = pipelines["__default__"]
    assert {"stored_silver_watermarks", "stored_silver_prices"} <= default.inputs()
    assert "silver_prices@pandas" in default.all_outputs()
    order = [node.name for node in default.nodes]
    assert order.index("plan_ingest") < order.index("extract_prices") < order.index("merge_silver")


def test_default_contains_every_node_of_every_stage(pipelines):
    default = pipelines["__default__"]
    every_stage = set().union(*(_names(pipelines[s]) for s in STAGES))
    assert _names(default) == every_stage
    assert len(default.nodes) == sum(len(pipelines[s].nodes) for s in STAGES) == 34


def test_default_runs_stages_in_dependency_order(pipelines):
    order = [node.name for node in pipelines["__default__"].nodes]  # topologically sorted
    assert order.index("extract_prices") < order.index("validate_prices")
    assert order.index("merge_silver") < order.index("build_features")
    assert order.index("build_model_input") < order.index("split_by_date")
    assert order.index("register_challenger") < order.index("decide_promotion")
    assert order.index("score_latest_sessions") < order.index("matured_performance")


def test_default_scores_only_after_the_promotion_decided(pipelines):
    """champion_model@update (promotion) and @serving (inference) are one dataset to Kedro."""
    order = [node.name for node in pipelines["__default__"].nodes]
    assert order.index("decide_promotion") < order.index("score_latest_sessions")


def test_rollback_reads_the_registry_and_writes_the_champion(pipelines):
    rollback = pipelines["rollback"]
    assert rollback.inputs() == {
        "model_registry",
        "stored_promotion_history",
        "params:rollback",
        "params:run",
    }
    assert rollback.outputs() == {
        "rollback_decision",
        "champion_model@update",
        "promotion_history",
    }


def test_without_a_session_the_scope_is_pooled() -> None:
    """A bare register_pipelines() (no session has created a config loader in this process, or
    the latest one is pooled) registers no per-symbol pipeline."""
    names = set(register_pipelines())
    assert not {name for name in names if name.startswith("training_")}


@pytest.fixture(scope="module")
def per_symbol_pipelines():
    configure_project("stock_ml")
    return register_pipelines(ModelScope(PER_SYMBOL, ("AAA", "BRK.B")))


def test_per_symbol_registers_one_namespaced_training_per_symbol(pipelines, per_symbol_pipelines):
    names = set(per_symbol_pipelines)
    assert names - set(pipelines) == {
        "training_aaa",
        "training_brk_b",
        "rollback_aaa",
        "rollback_brk_b",
    }
    aaa = per_symbol_pipelines["training_aaa"]
    pooled = {node.name for node in pipelines["training"].nodes} - {"start_rollout"}
    assert {node.name for node in aaa.nodes} == {"per_symbol.aaa.select_symbol"} | {
        f"per_symbol.aaa.{name}" for name in pooled
    }
    assert {node.namespace for node in aaa.nodes} == {"per_symbol.aaa"}
    # Shared: the gold model input (filtered by the first node) and silver prices; the symbol's
    # registry, champion and promotion history are its own; training/promotion parameters come
    # from model_scope.per_symbol, the rest are the env's.
    assert aaa.inputs() == {
        "gold_model_input",
        "silver_prices@pandas",
        "per_symbol.aaa.current_champion",
        "per_symbol.aaa.model_registry",
        "per_symbol.aaa.stored_promotion_history",
        "params:decision_threshold",
        "params:feature_store.label.horizon",
        "params:run",
        "params:model_scope.per_symbol.promotion",
        "params:model_scope.per_symbol.training.evaluation",
        "params:model_scope.per_symbol.training.search",
        "params:model_scope.per_symbol.training.seed",
        "params:model_scope.per_symbol.training.split",
    }
    assert "per_symbol.aaa.challenger_model" in aaa.all_outputs()
    assert "per_symbol.aaa.champion_model@update" in aaa.all_outputs()


def test_per_symbol_training_stage_and_retraining_hold_every_symbol(
    pipelines, per_symbol_pipelines
):
    stage = per_symbol_pipelines["training"]
    assert {node.namespace for node in stage.nodes} == {"per_symbol.aaa", "per_symbol.brk_b"}
    retraining = per_symbol_pipelines["retraining"]
    assert _names(stage) <= _names(retraining)
    assert _names(retraining) - _names(stage) == _names(pipelines["retraining"]) - _names(
        pipelines["training"]
    )
    # Training, inference and monitoring are per symbol; the data stages, publishing and the
    # rollback (of the pooled model) are the pooled scope's.
    for name in ["backfill", "publish", "rollback"]:
        assert _names(per_symbol_pipelines[name]) == _names(pipelines[name]), name


def test_per_symbol_inference_scores_each_symbol_with_its_own_models(per_symbol_pipelines):
    stage = per_symbol_pipelines["inference"]
    assert _names(stage) == {
        "per_symbol_inference.aaa.score_latest_sessions",
        "per_symbol_inference.brk_b.score_latest_sessions",
        "collect_predictions",
        "export_for_api",
    }
    # Each symbol's namespace reads its own champion and challenger (the model's datasets keep
    # their per_symbol.<symbol> names) and the shared gold model input; the predictions are
    # collected into the one prediction log.
    assert {i for i in stage.inputs() if not i.startswith("params:")} == {
        "gold_model_input",
        "per_symbol.aaa.champion_model@serving",
        "per_symbol.aaa.challenger_model",
        "per_symbol.brk_b.champion_model@serving",
        "per_symbol.brk_b.challenger_model",
    }
    assert stage.outputs() == {"predictions_api_latest", "predictions_api_history"}
    assert "predictions" in stage.all_outputs()


def test_per_symbol_monitoring_judges_each_symbols_champion(per_symbol_pipelines):
    stage = per_symbol_pipelines["monitoring"]
    per_symbol = {
        f"per_symbol_monitoring.{key}.{name}"
        for key in ("aaa", "brk_b")
        for name in ("drift_report", "decide_retraining", "promote_after_shadow")
    }
    collect = {"collect_drift", "collect_retrain_decisions", "collect_shadow_decisions"}
    assert _names(stage) == per_symbol | collect | {
        "matured_performance",
        "plot_monitoring_history",
    }
    assert {i for i in stage.inputs() if not i.startswith("params:")} == {
        "predictions",
        "gold_labels",
        "gold_model_input",
        "silver_data_health",
        *(
            f"per_symbol.{key}.{name}"
            for key in ("aaa", "brk_b")
            for name in ("champion_model@serving", "model_registry", "stored_promotion_history")
        ),
    }
    # The shadow step moves each symbol's own aliases and appends to its own history, with the
    # per-symbol promotion settings; the verdict the daily DAG branches on is the collected one.
    assert {
        "per_symbol.aaa.shadow_alias_update",
        "per_symbol.aaa.shadow_promotion_history",
        "retrain_decision",
        "monitoring_drift",
        "shadow_promotion_decision",
    } <= stage.all_outputs()
    assert "params:model_scope.per_symbol.promotion" in stage.inputs()
    assert "params:promotion" not in stage.inputs()


def test_per_symbol_namespaces_are_not_interrupted(per_symbol_pipelines, recwarn):
    """Kedro warns when a namespace's nodes are split by nodes outside it (a collapsed namespace
    would loop back into itself): scoring and monitoring, on either side of the shared prediction
    log, are namespaces of their own."""
    from kedro.pipeline import Pipeline

    Pipeline(per_symbol_pipelines["__default__"].nodes)
    assert not [w for w in recwarn if "is interrupted" in str(w.message)]


def test_per_symbol_rollback_moves_only_that_symbols_champion(pipelines, per_symbol_pipelines):
    rollback = per_symbol_pipelines["rollback_brk_b"]
    assert _names(rollback) == {"per_symbol.brk_b.rollback_champion"}
    assert rollback.inputs() == {
        "per_symbol.brk_b.model_registry",
        "per_symbol.brk_b.stored_promotion_history",
        "params:rollback",
        "params:run",
    }
    assert rollback.outputs() == {
        "per_symbol.brk_b.rollback_decision",
        "per_symbol.brk_b.champion_model@update",
        "per_symbol.brk_b.promotion_history",
    }
    assert not {name for name in pipelines if name.startswith("rollback_")}


def test_a_run_that_trains_and_scores_scores_after_the_rollout_began(pipelines):
    """rollout_state@promotion (written by start_rollout) and @serving (read by inference) are
    one dataset to Kedro, as champion_model@update and @serving are."""
    order = [node.name for node in pipelines["__default__"].nodes]
    assert order.index("start_rollout") < order.index("score_latest_sessions")
    assert order.index("score_latest_sessions") < order.index("advance_rollout")
    assert order.index("promote_after_shadow") < order.index("advance_rollout")
