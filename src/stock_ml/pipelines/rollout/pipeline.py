"""Rollout: started by a promotion (training, shadow or by hand), judged daily after monitoring."""

from kedro.pipeline import Pipeline, node

from stock_ml.pipelines.rollout.nodes import (
    advance_rollout,
    plan_manual_rollout,
    plot_rollout_history,
    start_manual_rollout,
    start_rollout,
)


def create_pipeline(**kwargs) -> Pipeline:
    """The daily step: after inference and monitoring (it reads what this run served and the
    shadow step's decision), before the next run's inference reads the state."""
    return Pipeline(
        [
            node(
                advance_rollout,
                inputs=[
                    "rollout_state@serving",
                    "shadow_promotion_decision",
                    "predictions",
                    "gold_labels",
                    "gold_model_input",
                    "model_registry",
                    "stored_promotion_history",
                    "stored_rollout_history",
                    "params:universe",
                    "params:rollout",
                    "params:feature_store.label.horizon",
                    "params:training.evaluation.sessions_per_year",
                    "params:run",
                ],
                outputs=[
                    "advanced_rollout_state",
                    "rollout_history",
                    "rollout_alias_update",
                    "rollout_promotion_history",
                    "rollout_decision",
                ],
                name="advance_rollout",
            ),
            node(
                plot_rollout_history,
                inputs="rollout_history",
                outputs="rollout_history_png",
                name="plot_rollout_history",
            ),
        ],
        tags=["rollout"],
    )


def create_start_pipeline(**kwargs) -> Pipeline:
    """After a training run's promotion decision: start a rollout of the new champion."""
    return Pipeline(
        [
            node(
                start_rollout,
                inputs=[
                    "promotion_decision",
                    "stored_rollout_state",
                    "params:rollout",
                    "params:run",
                ],
                outputs="rollout_state@promotion",
                name="start_rollout",
            )
        ],
        tags=["rollout"],
    )


def create_manual_pipeline(**kwargs) -> Pipeline:
    """``kedro run --pipeline rollout_start --params rollout_candidate=N``."""
    return Pipeline(
        [
            node(
                plan_manual_rollout,
                inputs=[
                    "model_registry",
                    "stored_promotion_history",
                    "params:rollout",
                    "params:run",
                ],
                outputs=["manual_rollout_decision", "champion_model@update", "promotion_history"],
                name="plan_manual_rollout",
            ),
            node(
                start_manual_rollout,
                inputs=[
                    "manual_rollout_decision",
                    "stored_rollout_state",
                    "params:rollout",
                    "params:run",
                ],
                outputs="rollout_state@promotion",
                name="start_manual_rollout",
            ),
        ],
        tags=["rollout"],
    )
