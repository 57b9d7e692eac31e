"""Inference pipeline: champion (and challenger in shadow) + gold model input → prediction log,
and the champion's predictions as JSON for an API."""

from kedro.pipeline import Pipeline, node

from stock_ml.pipelines.inference.nodes import export_for_api, score_latest_sessions


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
                    "challenger_model",
                    "params:run",
                    "params:universe",
                ],
                outputs="predictions",
                name="score_latest_sessions",
            ),
            node(
                export_for_api,
                inputs="predictions",
                outputs=["predictions_api_latest", "predictions_api_history"],
                name="export_for_api",
            ),
        ],
        tags=["inference"],
    )
