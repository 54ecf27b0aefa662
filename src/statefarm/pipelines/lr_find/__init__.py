"""``lr_find`` pipeline."""

from statefarm.pipelines.lr_find.pipeline import create_pipeline

__all__ = ["create_pipeline"]
