"""``training`` pipeline."""

from statefarm.pipelines.training.pipeline import create_pipeline

__all__ = ["create_pipeline"]
