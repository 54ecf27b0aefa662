"""``collab``: collaborative filtering on MovieLens, the lesson's other system."""

from statefarm.pipelines.collab.pipeline import create_pipeline

__all__ = ["create_pipeline"]
