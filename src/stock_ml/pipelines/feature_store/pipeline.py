"""Feature store pipeline: silver → gold features, labels and model input."""

from kedro.pipeline import Pipeline, node

from stock_ml.pipelines.feature_store.nodes import (
    build_features,
    build_labels,
    build_model_input,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                build_features,
                inputs=[
                    "silver_prices",
                    "params:feature_store.features.windows",
                    "params:feature_store.features.rsi_window",
                ],
                outputs="gold_features",
                name="build_features",
            ),
            node(
                build_labels,
                inputs=["silver_prices", "params:feature_store.label.horizon"],
                outputs="gold_labels",
                name="build_labels",
            ),
            node(
                build_model_input,
                inputs=["gold_features", "gold_labels"],
                outputs="gold_model_input",
                name="build_model_input",
            ),
        ],
        tags=["feature_store"],
    )
