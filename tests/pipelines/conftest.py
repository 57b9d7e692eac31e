"""Small, seeded data shared by the node unit tests (no Kedro session, no MLflow)."""

from __future__ import annotations

import pandas as pd
import pytest

from stock_ml.pipelines.feature_store.nodes import (
    build_features,
    build_labels,
    build_model_input,
)
from stock_ml.synthetic import generate_ohlcv

HORIZON = 3
RUN = {"id": "unit-test-run"}


@pytest.fixture
def feature_params() -> dict:
    """Feature store parameters small enough for short synthetic histories."""
    return {
        "features": {
            "families": ["KBAR", "ROC", "MA", "STD", "VMA"],
            "windows": [5, 10],
            "cross_sectional_ranks": ["roc5"],
        },
        "horizon": HORIZON,
    }


@pytest.fixture
def synthetic_prices() -> pd.DataFrame:
    """Silver-like prices: 3 symbols x 120 weekday sessions, seeded."""
    return generate_ohlcv(["AAA", "BBB", "CCC"], start="2023-01-02", sessions=120, seed=11)


@pytest.fixture
def model_input(synthetic_prices: pd.DataFrame, feature_params: dict) -> pd.DataFrame:
    """Gold model input built with the real feature store nodes."""
    features = build_features(synthetic_prices, feature_params["features"], RUN)
    labels = build_labels(synthetic_prices, feature_params["horizon"], RUN)
    return build_model_input(features, labels)
