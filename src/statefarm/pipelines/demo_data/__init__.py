"""The ``demo_data`` pipeline."""

from statefarm.pipelines.demo_data.pipeline import create_pipeline

__all__ = ["create_pipeline"]
