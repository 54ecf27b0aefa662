"""The ``data_prep`` pipeline."""

from statefarm.pipelines.data_prep.pipeline import create_pipeline

__all__ = ["create_pipeline"]
