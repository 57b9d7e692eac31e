"""Project pipelines.

Each stage is its own pipeline folder (ingest → silver → feature_store → training → promotion →
inference → monitoring → publish). ``publish`` writes each run's rows to the env's serving tables
(PostgreSQL in prod); its data-health and quarantine nodes run with every ingest. ``training``
runs the search, registers the ``challenger`` and decides its promotion (the promotion folder's
gates). Three groups are registered for Airflow: ``daily`` (refresh the data, score with the
champion, judge past predictions, publish), ``retraining`` (refresh the data, train, register,
decide) and ``backfill`` (refetch a date range into the stores; run with ``ingest_mode=backfill``).
With ``rollout.enabled`` a promotion starts a staged rollout by instrument share, judged by the
daily run's rollout step (monitoring stage); ``rollout_start`` starts one by hand.
``rollback`` moves ``champion`` back to ``previous`` (or to ``rollback_to_version``); per symbol,
``rollback_<symbol>`` moves that symbol's own champion.
``init_serving_store`` creates the env's PostgreSQL schema and tables (``make init-prod``).
``__default__`` runs every stage once in order.

With ``model_scope.kind: per_symbol`` (env conf; see stock_ml.model_scope) the training stage is
one namespaced pipeline per symbol of the env's universe, each also registered on its own as
``training_<symbol>`` (its own Airflow DAG, which trains on the gold store the daily DAG keeps);
``retraining`` then refreshes the data and trains every symbol's model. Inference and monitoring
are then namespaced per symbol too: each symbol is scored by its own champion (its challenger in
shadow), its drift and verdict judged on its own and its shadow promotion decided on its own
registered model; the predictions, drift tables and verdicts are collected into the same
datasets the pooled scope writes, the verdict naming the symbols to retrain
(``retrain_symbols``: the daily DAG triggers each one's ``training_<symbol>`` DAG).

The stages are listed explicitly rather than found with ``find_pipelines``: Kedro 1.7 narrows
``find_pipelines`` to the pipeline names a run asks for, so a group such as ``daily`` (no folder of
its own) would find none of its stages.
"""

from __future__ import annotations

from kedro.pipeline import Pipeline

from stock_ml.model_scope import PER_SYMBOL, ModelScope, active_scope, symbol_key
from stock_ml.pipelines import (
    feature_store,
    inference,
    ingest,
    monitoring,
    promotion,
    rollout,
    serving_store,
    silver,
    training,
)


def register_pipelines(scope: ModelScope | None = None) -> dict[str, Pipeline]:
    """Kedro calls this without arguments: the scope is then the env's whose session is being
    created (stock_ml.model_scope.active_scope)."""
    scope = scope or active_scope()
    pooled_training = training.create_pipeline() + promotion.create_pipeline()
    by_symbol = {
        f"training_{symbol_key(symbol)}": training.create_symbol_pipeline(
            pooled_training, symbol, namespace
        )
        for symbol, namespace in scope.namespaces.items()
    }
    per_symbol = scope.kind == PER_SYMBOL
    namespaces = scope.namespaces
    stages = {
        "ingest": ingest.create_pipeline(),
        "silver": silver.create_pipeline(),
        "feature_store": feature_store.create_pipeline(),
        "training": (
            sum(by_symbol.values(), Pipeline([]))
            if per_symbol
            else pooled_training + rollout.create_start_pipeline()
        ),
        "inference": (
            inference.create_per_symbol_pipeline(namespaces)
            if per_symbol
            else inference.create_pipeline()
        ),
        "monitoring": (
            monitoring.create_per_symbol_pipeline(namespaces)
            + promotion.create_per_symbol_shadow_pipeline(namespaces)
            if per_symbol
            else monitoring.create_pipeline()
            + promotion.create_shadow_pipeline()
            + rollout.create_pipeline()
        ),
        "publish": serving_store.create_publish_pipeline(),
    }
    publish_data = stages["publish"].only_nodes_with_tags("publish_data")
    data = stages["ingest"] + stages["silver"] + stages["feature_store"] + publish_data
    # A symbol's own champion back one step (or to rollback_to_version): rollback_<symbol>.
    rollbacks = {
        f"rollback_{symbol_key(symbol)}": promotion.create_symbol_rollback_pipeline(namespace)
        for symbol, namespace in namespaces.items()
    }
    return {
        **stages,
        **by_symbol,
        **rollbacks,
        "daily": data + stages["inference"] + stages["monitoring"] + stages["publish"],
        "retraining": data + stages["training"],
        "backfill": data,
        "rollback": promotion.create_rollback_pipeline(),
        "rollout_start": rollout.create_manual_pipeline(),
        "init_serving_store": serving_store.create_pipeline(),
        "__default__": sum(stages.values(), Pipeline([])),  # stages are listed in run order
    }
