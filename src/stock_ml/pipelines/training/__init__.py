"""training pipeline."""

from .pipeline import create_pipeline, create_symbol_pipeline

__all__ = ["create_pipeline", "create_symbol_pipeline"]
