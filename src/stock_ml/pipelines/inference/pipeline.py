"""Inference pipeline: champion by alias + gold model input → prediction log partitions."""

from kedro.pipeline import Pipeline, node

from stock_ml.pipelines.inference.nodes import score_latest_sessions


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                score_latest_sessions,
                inputs=[
                    "champion_model@serving",
                    "gold_model_input",
                    "params:inference.score_sessions",
                    "params:feature_store.label.horizon",
                    "params:decision_threshold",
                ],
                outputs="predictions",
                name="score_latest_sessions",
            )
        ],
        tags=["inference"],
    )
