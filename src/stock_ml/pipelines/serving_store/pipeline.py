"""The serving store: ``init_serving_store`` (conf → DDL → one transaction, ``make init-prod``)
and ``publish`` (each run's rows → the env's serving tables; PostgreSQL in prod, replacing the
run's own rows in one transaction, Parquet files of the last publish elsewhere)."""

from kedro.pipeline import Pipeline, node

from stock_ml.pipelines.serving_store.nodes import (
    data_health_rows,
    drift_rows,
    performance_rows,
    predictions_rows,
    quarantine_rows,
    serving_store_ddl,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                serving_store_ddl,
                inputs="params:serving_store",
                outputs="serving_store_schema",
                name="serving_store_ddl",
            )
        ],
        tags=["serving_store"],
    )


def create_publish_pipeline(**kwargs) -> Pipeline:
    """Tagged ``data`` (every run that ingests) or ``model`` (runs that score and monitor)."""
    data = Pipeline(
        [
            node(
                data_health_rows,
                inputs=["silver_data_health", "params:run", "params:serving_store"],
                outputs="serving_data_health",
                name="publish_data_health",
            ),
            node(
                quarantine_rows,
                inputs=["silver_quarantine", "params:run", "params:serving_store"],
                outputs="serving_quarantine",
                name="publish_quarantine",
            ),
        ],
        tags=["publish", "publish_data"],
    )
    model = Pipeline(
        [
            node(
                predictions_rows,
                inputs=["predictions", "params:run", "params:serving_store"],
                outputs="serving_predictions",
                name="publish_predictions",
            ),
            node(
                performance_rows,
                inputs=["monitoring_performance", "params:serving_store"],
                outputs="serving_performance_log",
                name="publish_performance_log",
            ),
            node(
                drift_rows,
                inputs=["monitoring_drift", "params:serving_store"],
                outputs="serving_monitoring_drift",
                name="publish_monitoring_drift",
            ),
        ],
        tags=["publish", "publish_model"],
    )
    return data + model
