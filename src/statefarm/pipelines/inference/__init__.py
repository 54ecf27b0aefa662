"""``inference`` pipeline."""

from statefarm.pipelines.inference.pipeline import create_pipeline

__all__ = ["create_pipeline"]
