"""Serving store: the env's schema and tables, created idempotently, and each run's rows in them."""

from stock_ml.pipelines.serving_store.pipeline import create_pipeline, create_publish_pipeline

__all__ = ["create_pipeline", "create_publish_pipeline"]
