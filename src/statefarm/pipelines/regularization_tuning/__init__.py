"""``regularization_tuning`` pipeline."""

from statefarm.pipelines.regularization_tuning.pipeline import create_pipeline

__all__ = ["create_pipeline"]
