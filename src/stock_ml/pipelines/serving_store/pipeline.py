"""init_serving_store: conf → DDL → PostgreSQL, in one transaction (``make init-prod``)."""

from kedro.pipeline import Pipeline, node

from stock_ml.pipelines.serving_store.nodes import serving_store_ddl


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
