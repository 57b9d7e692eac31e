"""Inference pipeline: champion (and challenger in shadow) + gold model input → prediction log,
and the champion's predictions as JSON for an API."""

from kedro.pipeline import Pipeline, node

from stock_ml.pipelines.inference.nodes import (
    collect_predictions,
    export_for_api,
    score_latest_sessions,
)
from stock_ml.pipelines.symbol_namespace import (
    bind_symbol,
    namespaced_for_symbol,
    stage_namespace,
)

SCORING_INPUTS = [
    "champion_model@serving",
    "gold_model_input",
    "params:inference.score_sessions",
    "params:feature_store.label.horizon",
    "params:decision_threshold",
    "challenger_model",
    "params:run",
    "params:universe",
]
# A staged rollout (pooled scope): the state, and the version the champion replaced.
ROLLOUT_INPUTS = ["rollout_state@serving", "rollout_baseline_model"]


def _export() -> Pipeline:
    return Pipeline(
        [
            node(
                export_for_api,
                inputs="predictions",
                outputs=["predictions_api_latest", "predictions_api_history"],
                name="export_for_api",
            )
        ],
        tags=["inference"],
    )


def create_pipeline(**kwargs) -> Pipeline:
    scoring = node(
        score_latest_sessions,
        inputs=SCORING_INPUTS + ROLLOUT_INPUTS,
        outputs="predictions",
        name="score_latest_sessions",
    )
    return Pipeline([scoring], tags=["inference"]) + _export()


def create_per_symbol_pipeline(namespaces: dict[str, str]) -> Pipeline:
    """model_scope per_symbol: each symbol scored by its own champion (and challenger in shadow;
    no staged rollout: a symbol's model serves one symbol, there is no share to grow),
    namespace by namespace (``per_symbol_inference.<symbol>``, reading its
    ``per_symbol.<symbol>.champion_model@serving``...), the predictions collected into the one
    prediction log the pooled pipeline writes."""
    by_symbol = Pipeline([])
    for symbol, namespace in namespaces.items():
        scoring = node(
            bind_symbol(score_latest_sessions, symbol),
            inputs=SCORING_INPUTS,
            outputs="predictions",
            name="score_latest_sessions",
        )
        stage = Pipeline([scoring], tags=["inference"])
        by_symbol += namespaced_for_symbol(
            stage,
            stage_namespace(namespace, "inference"),
            shared={"gold_model_input"},
            model_datasets={"champion_model@serving", "challenger_model"},
            model_namespace=namespace,
        )
    collect = node(
        collect_predictions,
        inputs=[f"{stage_namespace(ns, 'inference')}.predictions" for ns in namespaces.values()],
        outputs="predictions",
        name="collect_predictions",
    )
    return by_symbol + Pipeline([collect], tags=["inference"]) + _export()
