"""Monitoring pipeline: prediction log + labels + training reference → tables and a plot."""

from kedro.pipeline import Pipeline, node

from stock_ml.pipelines.monitoring.nodes import (
    decide_retraining,
    feature_drift,
    matured_performance,
    plot_monitoring,
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
                feature_drift,
                inputs=[
                    "training_reference_features",
                    "gold_model_input",
                    "params:monitoring.drift.window_sessions",
                    "params:monitoring.drift.bins",
                ],
                outputs="monitoring_feature_drift",
                name="feature_drift",
            ),
            node(
                plot_monitoring,
                inputs=[
                    "monitoring_performance",
                    "monitoring_feature_drift",
                    "params:monitoring.drift.psi_alert",
                ],
                outputs="monitoring_plot",
                name="plot_monitoring",
            ),
            node(
                decide_retraining,
                inputs=[
                    "monitoring_performance",
                    "monitoring_feature_drift",
                    "model_registry",
                    "params:monitoring.decision",
                    "params:run",
                ],
                outputs="retrain_decision",
                name="decide_retraining",
            ),
        ],
        tags=["monitoring"],
    )
