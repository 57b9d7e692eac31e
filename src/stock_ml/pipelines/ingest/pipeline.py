"""Ingest pipeline: stored state + mode → ingest plan; source → this run's bronze partition."""

from kedro.pipeline import Pipeline, node

from stock_ml.pipelines.ingest.nodes import extract_prices, plan_ingest


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                plan_ingest,
                inputs=[
                    "stored_silver_watermarks",
                    "params:ingest",
                    "params:universe",
                    "params:run",
                ],
                outputs="ingest_plan",
                name="plan_ingest",
            ),
            node(
                extract_prices,
                inputs=[
                    "raw_price_files",
                    "yahoo_prices",
                    "ingest_plan",
                    "params:ingest.source",
                    "params:ingest.csv_formats",
                    "params:universe",
                    "params:silver.parsing",
                    "params:run",
                ],
                outputs="bronze_prices",
                name="extract_prices",
            ),
        ],
        tags=["ingest"],
    )
