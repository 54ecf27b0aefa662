"""``submission`` pipeline."""

from statefarm.pipelines.submission.pipeline import create_pipeline

__all__ = ["create_pipeline"]
