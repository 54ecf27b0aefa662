"""The ``sampling`` pipeline."""

from statefarm.pipelines.sampling.pipeline import create_pipeline

__all__ = ["create_pipeline"]
