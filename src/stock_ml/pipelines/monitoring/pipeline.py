"""Monitoring pipeline: prediction log + labels + the champion's training rows → tables, plots and
the verdict the daily DAG branches on."""

from kedro.pipeline import Pipeline, node

from stock_ml.pipelines.monitoring.nodes import (
    decide_retraining,
    drift_report,
    matured_performance,
    plot_monitoring_history,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                matured_performance,
                inputs=["predictions", "gold_labels"],
                outputs="monitoring_performance",
                name="matured_performance",
            ),
            node(
                drift_report,
                inputs=[
                    "gold_model_input",
                    "champion_model@serving",
                    "params:monitoring.drift.window_sessions",
                    "params:monitoring.drift.bins",
                    "params:run",
                ],
                outputs=["monitoring_drift", "monitoring_drift_history"],
                name="drift_report",
            ),
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
            ),
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
