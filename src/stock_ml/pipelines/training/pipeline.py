"""Training pipeline: gold model input → searched, evaluated model registered as ``challenger``."""

from kedro.pipeline import Pipeline, node

from stock_ml.pipelines.symbol_namespace import bind_symbol, namespaced_for_symbol
from stock_ml.pipelines.training.nodes import (
    data_lineage,
    evaluate_holdout,
    fit_model,
    package_challenger,
    run_params,
    score_holdout,
    search_model,
    search_trials_table,
    select_symbol,
    split_by_date,
)

# Datasets a per-symbol pipeline shares with the pooled one (everything else is namespaced; its
# gold model input is its select_symbol node's output).
SHARED_INPUTS = {"silver_prices@pandas"}
# A one-symbol model reads these blocks from model_scope.per_symbol (the env's own blocks with the
# per-symbol changes merged in; parameters_training.yml, stock_ml.model_scope).
PER_SYMBOL_BLOCKS = ("training", "promotion")


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                split_by_date,
                inputs=[
                    "gold_model_input",
                    "params:training.split",
                    "params:feature_store.label.horizon",
                ],
                outputs=["train_rows", "holdout_rows", "training_window"],
                name="split_by_date",
            ),
            node(
                search_model,
                inputs=[
                    "train_rows",
                    "params:training.search",
                    "params:training.split",
                    "params:feature_store.label.horizon",
                    "params:training.seed",
                ],
                outputs=["search_trials", "best_model_config"],
                name="search_model",
            ),
            node(
                search_trials_table,
                inputs="search_trials",
                outputs="training_search_trials",
                name="log_search_trials",
            ),
            node(
                fit_model,
                inputs=[
                    "train_rows",
                    "best_model_config",
                    "params:training.search",
                    "params:training.seed",
                ],
                outputs="fitted_model",
                name="fit_model",
            ),
            node(
                score_holdout,
                inputs=[
                    "fitted_model",
                    "current_champion",
                    "holdout_rows",
                    "train_rows",
                    "silver_prices@pandas",
                    "params:training.evaluation",
                ],
                outputs="training_holdout_scores",
                name="score_holdout",
            ),
            node(
                evaluate_holdout,
                inputs=[
                    "training_holdout_scores",
                    "silver_prices@pandas",
                    "params:training.evaluation",
                    "params:feature_store.label.horizon",
                    "params:decision_threshold",
                ],
                outputs=[
                    "holdout_report",
                    "training_holdout_ic",
                    "training_holdout_equity",
                    "training_metrics",
                ],
                name="evaluate_holdout",
            ),
            node(
                data_lineage,
                inputs="gold_model_input",
                outputs="training_data_lineage",
                name="data_lineage",
            ),
            node(
                package_challenger,
                inputs=[
                    "fitted_model",
                    "train_rows",
                    "best_model_config",
                    "training_data_lineage",
                    "training_window",
                    "params:run",
                ],
                outputs="challenger_model",
                name="register_challenger",
            ),
            node(
                run_params,
                inputs=["training_data_lineage", "training_window", "best_model_config"],
                outputs="training_run_params",
                name="log_run_params",
            ),
        ],
        tags=["training"],
    )


def create_symbol_pipeline(training: Pipeline, symbol: str, namespace: str) -> Pipeline:
    """``training`` (training + promotion) for one symbol, as the namespaced pipeline
    ``namespace``: its rows of the gold model input, its own registered model, aliases and
    promotion history (catalog factories ``per_symbol.{symbol}.*``), the per-symbol search,
    evaluation and gates; the other parameters and the silver prices are shared."""
    rows = Pipeline(
        [
            node(
                bind_symbol(select_symbol, symbol),
                inputs="gold_model_input",
                outputs=f"{namespace}.gold_model_input",
                name="select_symbol",
                namespace=namespace,
            )
        ],
        tags=["training"],
    )
    return rows + namespaced_for_symbol(
        training, namespace, shared=SHARED_INPUTS, per_symbol_blocks=PER_SYMBOL_BLOCKS
    )
