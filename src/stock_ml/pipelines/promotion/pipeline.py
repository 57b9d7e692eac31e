"""Promotion (after training: gates → alias moves) and rollback (champion back one step)."""

from kedro.pipeline import Pipeline, node

from stock_ml.pipelines.promotion.nodes import (
    decide_promotion,
    model_card,
    plan_rollback,
    promote_after_shadow,
)


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
