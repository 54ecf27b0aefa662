"""``augment_tuning`` pipeline."""

from statefarm.pipelines.augment_tuning.pipeline import create_pipeline

__all__ = ["create_pipeline"]
