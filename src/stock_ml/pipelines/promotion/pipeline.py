"""Promotion (after training: gates → alias moves) and rollback (champion back one step)."""

from kedro.pipeline import Pipeline, node

from stock_ml.pipelines.promotion.nodes import (
    collect_shadow_decisions,
    decide_promotion,
    model_card,
    plan_rollback,
    promote_after_shadow,
)
from stock_ml.pipelines.symbol_namespace import (
    bind_symbols,
    namespaced_for_symbol,
    stage_namespace,
)

# A symbol's own model's datasets the shadow step reads and writes (per_symbol.<symbol>.<name>).
SHADOW_MODEL_DATASETS = {
    "model_registry",
    "stored_promotion_history",
    "shadow_alias_update",
    "shadow_promotion_history",
}


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                decide_promotion,
                inputs=[
                    "challenger_model",
                    "model_registry",
                    "holdout_report",
                    "stored_promotion_history",
                    "params:promotion",
                    "params:run",
                ],
                outputs=[
                    "promotion_decision",
                    "champion_model@update",
                    "promotion_history",
                    "promotion_metrics",
                ],
                name="decide_promotion",
            ),
            node(
                model_card,
                inputs=[
                    "best_model_config",
                    "training_window",
                    "training_data_lineage",
                    "holdout_report",
                    "promotion_decision",
                ],
                outputs="model_card",
                name="model_card",
            ),
        ],
        tags=["promotion"],
    )


def create_rollback_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                plan_rollback,
                inputs=[
                    "model_registry",
                    "stored_promotion_history",
                    "params:rollback",
                    "params:run",
                ],
                outputs=["rollback_decision", "champion_model@update", "promotion_history"],
                name="rollback_champion",
            )
        ],
        tags=["rollback"],
    )


def create_symbol_rollback_pipeline(namespace: str) -> Pipeline:
    """model_scope per_symbol: ``rollback`` on one symbol's registered model and promotion
    history (``per_symbol.<symbol>.*``), with the shared ``rollback`` parameters."""
    return namespaced_for_symbol(create_rollback_pipeline(), namespace, shared=())


def create_shadow_pipeline(**kwargs) -> Pipeline:
    """Daily, after monitoring: finish a promotion that waits on matured shadow days.

    It writes the registry under its own name (``shadow_alias_update``): inference reads
    ``champion_model`` earlier in the same daily run, so a move made here serves from the next run.
    """
    return Pipeline(
        [
            node(
                promote_after_shadow,
                inputs=[
                    "monitoring_performance",
                    "model_registry",
                    "stored_promotion_history",
                    "params:promotion",
                    "params:run",
                ],
                outputs=[
                    "shadow_promotion_decision",
                    "shadow_alias_update",
                    "shadow_promotion_history",
                ],
                name="promote_after_shadow",
            )
        ],
        tags=["promotion"],
    )


def create_per_symbol_shadow_pipeline(namespaces: dict[str, str]) -> Pipeline:
    """model_scope per_symbol: each symbol's shadow promotion on its own registered model, with
    the per-symbol promotion settings, in the symbol's monitoring namespace; the decisions
    collected into one record."""
    by_symbol = Pipeline([])
    for namespace in namespaces.values():
        by_symbol += namespaced_for_symbol(
            create_shadow_pipeline(),
            stage_namespace(namespace, "monitoring"),
            shared={"monitoring_performance"},
            per_symbol_blocks=("promotion",),
            model_datasets=SHADOW_MODEL_DATASETS,
            model_namespace=namespace,
        )
    decisions = [stage_namespace(ns, "monitoring") for ns in namespaces.values()]
    collect = node(
        bind_symbols(collect_shadow_decisions, namespaces),
        inputs=[f"{ns}.shadow_promotion_decision" for ns in decisions],
        outputs="shadow_promotion_decision",
        name="collect_shadow_decisions",
    )
    return by_symbol + Pipeline([collect], tags=["promotion"])
