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
                inputs=["silver_prices@engine", "params:feature_store.features", "params:run"],
                outputs="gold_features@engine",
                name="build_features",
            ),
            node(
                build_labels,
                inputs=["silver_prices@pandas", "params:feature_store.label.horizon", "params:run"],
                outputs="gold_labels",
                name="build_labels",
            ),
            node(
                build_model_input,
                inputs=["gold_features@pandas", "gold_labels"],
                outputs="gold_model_input",
                name="build_model_input",
            ),
        ],
        tags=["feature_store"],
    )
