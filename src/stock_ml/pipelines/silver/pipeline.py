"""Silver pipeline: bronze → validated silver, quarantine, and a data-health table."""

from kedro.pipeline import Pipeline, node

from stock_ml.pipelines.silver.nodes import data_health, validate_prices


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                validate_prices,
                inputs=[
                    "bronze_prices",
                    "params:universe",
                    "params:silver.parsing",
                    "params:run.date",
                ],
                outputs=["silver_prices", "silver_quarantine", "silver_row_accounting"],
                name="validate_prices",
            ),
            node(
                data_health,
                inputs=[
                    "silver_prices",
                    "silver_row_accounting",
                    "params:universe",
                    "params:run.date",
                    "params:silver.freshness.max_sessions_behind",
                ],
                outputs="silver_data_health",
                name="data_health",
            ),
        ],
        tags=["silver"],
    )
