"""rollout pipeline: staged rollout of a new champion by instrument share."""

from .pipeline import create_manual_pipeline, create_pipeline, create_start_pipeline

__all__ = ["create_manual_pipeline", "create_pipeline", "create_start_pipeline"]
