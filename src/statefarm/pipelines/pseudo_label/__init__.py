"""``pseudo_label`` pipeline: the whole chain, end to end."""

from statefarm.pipelines.pseudo_label.pipeline import create_pipeline

__all__ = ["create_pipeline"]
