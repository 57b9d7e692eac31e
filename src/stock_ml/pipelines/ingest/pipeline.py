"""Ingest pipeline: source → bronze."""

from kedro.pipeline import Pipeline, node

from stock_ml.pipelines.ingest.nodes import extract_prices


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                extract_prices,
                inputs=[
                    "raw_price_files",
                    "params:ingest.source",
                    "params:ingest.csv_formats",
                    "params:universe",
                    "params:run.id",
                ],
                outputs="bronze_prices",
                name="extract_prices",
            )
        ],
        tags=["ingest"],
    )
