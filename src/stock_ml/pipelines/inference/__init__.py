"""inference pipeline."""

from .pipeline import create_per_symbol_pipeline, create_pipeline

__all__ = ["create_per_symbol_pipeline", "create_pipeline"]
