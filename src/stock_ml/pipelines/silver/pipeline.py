"""Silver pipeline: this run's bronze → validated rows merged into silver, quarantine, health."""

from kedro.pipeline import Pipeline, node

from stock_ml.pipelines.silver.nodes import merge_silver, run_data_health, validate_run


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                validate_run,
                inputs=[
                    "bronze_prices",
                    "params:universe",
                    "params:silver.parsing",
                    "params:run",
                ],
                outputs=["run_silver_rows", "silver_quarantine", "run_row_accounting"],
                name="validate_prices",
            ),
            node(
                merge_silver,
                inputs=[
                    "stored_silver_prices",
                    "run_silver_rows",
                    "params:ingest",
                    "params:universe",
                    "params:run",
                ],
                outputs="silver_prices@pandas",
                name="merge_silver",
            ),
            node(
                run_data_health,
                inputs=[
                    "silver_prices@pandas",
                    "run_row_accounting",
                    "params:universe",
                    "params:run",
                    "params:silver.freshness.max_sessions_behind",
                ],
                outputs="silver_data_health",
                name="data_health",
            ),
        ],
        tags=["silver"],
    )
