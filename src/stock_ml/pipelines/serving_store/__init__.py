"""Serving store: the env's PostgreSQL schema and its tables, created idempotently."""

from stock_ml.pipelines.serving_store.pipeline import create_pipeline

__all__ = ["create_pipeline"]
