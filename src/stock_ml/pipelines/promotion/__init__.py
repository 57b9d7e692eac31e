"""promotion pipeline: champion/challenger gates, and rollback."""

from .pipeline import (
    create_per_symbol_shadow_pipeline,
    create_pipeline,
    create_rollback_pipeline,
    create_shadow_pipeline,
    create_symbol_rollback_pipeline,
)

__all__ = [
    "create_per_symbol_shadow_pipeline",
    "create_pipeline",
    "create_rollback_pipeline",
    "create_shadow_pipeline",
    "create_symbol_rollback_pipeline",
]
