"""Training pipeline: gold model input → registered model with alias ``champion``."""

from kedro.pipeline import Pipeline, node

from stock_ml.pipelines.training.nodes import (
    data_lineage,
    evaluate_model,
    reference_features,
    register_model,
    split_by_date,
    train_model,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                split_by_date,
                inputs=["gold_model_input", "params:training.holdout_sessions"],
                outputs=["train_rows", "holdout_rows"],
                name="split_by_date",
            ),
            node(
                train_model,
                ["train_rows", "params:training.model"],
                "fitted_model",
                name="train_model",
            ),
            node(
                evaluate_model,
                inputs=["fitted_model", "holdout_rows", "params:decision_threshold"],
                outputs="training_metrics",
                name="evaluate_model",
            ),
            node(
                register_model,
                inputs="fitted_model",
                outputs="champion_model",
                name="register_model",
            ),
            node(
                data_lineage,
                inputs="gold_model_input",
                outputs="training_data_lineage",
                name="data_lineage",
            ),
            node(
                reference_features,
                inputs="train_rows",
                outputs="training_reference_features",
                name="reference_features",
            ),
        ],
        tags=["training"],
    )
