"""Monitoring pipeline: prediction log + labels + the champion's training rows → tables, plots and
the verdict the daily DAG branches on."""

from kedro.pipeline import Pipeline, node

from stock_ml.pipelines.monitoring.nodes import (
    collect_drift,
    collect_retrain_decisions,
    decide_retraining,
    drift_report,
    matured_performance,
    plot_monitoring_history,
)
from stock_ml.pipelines.symbol_namespace import (
    bind_symbol,
    bind_symbols,
    namespaced_for_symbol,
    stage_namespace,
)

DRIFT_INPUTS = [
    "gold_model_input",
    "champion_model@serving",
    "params:monitoring.drift.window_sessions",
    "params:monitoring.drift.bins",
    "params:run",
]
# What a per-symbol model's drift and verdict share with every other symbol's.
SHARED_INPUTS = {"gold_model_input", "monitoring_performance", "silver_data_health"}
# A symbol's own model's datasets, per_symbol.<symbol>.<name> (catalog factories).
MODEL_DATASETS = {
    "champion_model@serving",
    "model_registry",
    "stored_promotion_history",
    "shadow_alias_update",
    "shadow_promotion_history",
}


def _performance() -> Pipeline:
    return Pipeline(
        [
            node(
                matured_performance,
                inputs=["predictions", "gold_labels"],
                outputs="monitoring_performance",
                name="matured_performance",
            )
        ],
        tags=["monitoring"],
    )


def _decision() -> Pipeline:
    return Pipeline(
        [
            node(
                decide_retraining,
                inputs=[
                    "monitoring_performance",
                    "monitoring_drift",
                    "model_registry",
                    "silver_data_health",
                    "params:monitoring.decision",
                    "params:run",
                ],
                outputs="retrain_decision",
                name="decide_retraining",
            ),
        ],
        tags=["monitoring"],
    )


def _plots() -> Pipeline:
    return Pipeline(
        [
            node(
                plot_monitoring_history,
                inputs=[
                    "monitoring_performance",
                    "monitoring_drift_history",
                    "params:monitoring.decision",
                    "params:monitoring.plots",
                ],
                outputs=["monitoring_history_png", "monitoring_history_html"],
                name="plot_monitoring_history",
            )
        ],
        tags=["monitoring"],
    )


def create_pipeline(**kwargs) -> Pipeline:
    drift = node(
        drift_report,
        inputs=DRIFT_INPUTS,
        outputs=["monitoring_drift", "monitoring_drift_history"],
        name="drift_report",
    )
    return _performance() + Pipeline([drift], tags=["monitoring"]) + _plots() + _decision()


def create_per_symbol_pipeline(namespaces: dict[str, str]) -> Pipeline:
    """model_scope per_symbol: each symbol's champion judged on its own (its drift on its rows,
    its matured accuracy, its age) in its namespace ``per_symbol_monitoring.<symbol>``; the
    drift tables and verdicts collected into the pooled pipeline's outputs, the verdict naming
    the symbols to retrain."""
    by_symbol = Pipeline([])
    for symbol, namespace in namespaces.items():
        drift = node(
            bind_symbol(drift_report, symbol),
            inputs=DRIFT_INPUTS,
            outputs=["monitoring_drift", "monitoring_drift_history"],
            name="drift_report",
        )
        stage = Pipeline([drift], tags=["monitoring"]) + _decision()
        by_symbol += namespaced_for_symbol(
            stage,
            stage_namespace(namespace, "monitoring"),
            shared=SHARED_INPUTS,
            model_datasets=MODEL_DATASETS,
            model_namespace=namespace,
        )
    monitored = [stage_namespace(ns, "monitoring") for ns in namespaces.values()]
    collect = [
        node(
            collect_drift,
            inputs=["params:run", *(f"{ns}.monitoring_drift" for ns in monitored)],
            outputs=["monitoring_drift", "monitoring_drift_history"],
            name="collect_drift",
        ),
        node(
            bind_symbols(collect_retrain_decisions, namespaces),
            inputs=[f"{ns}.retrain_decision" for ns in monitored],
            outputs="retrain_decision",
            name="collect_retrain_decisions",
        ),
    ]
    return _performance() + by_symbol + Pipeline(collect, tags=["monitoring"]) + _plots()
