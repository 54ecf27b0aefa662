"""``inference`` pipeline."""

from statefarm.pipelines.inference.pipeline import create_pipeline, create_shared_pipeline

__all__ = ["create_pipeline", "create_shared_pipeline"]
