"""Column roles of the gold model input table, shared by training, inference and monitoring."""

import pandas as pd

NON_FEATURE_COLUMNS = frozenset(
    {
        "symbol",
        "date",
        "target_date",
        "forward_return",
        "label_up",
        "horizon",
        "has_features",
        "is_trainable",
        "dataset_run_id",
        "feature_schema_hash",
        "label_run_id",
    }
)


def feature_columns(model_input: pd.DataFrame) -> list[str]:
    """Feature columns in table order: everything that is not a key, a label or a flag."""
    return [c for c in model_input.columns if c not in NON_FEATURE_COLUMNS]
