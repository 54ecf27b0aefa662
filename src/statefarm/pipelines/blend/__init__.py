"""``blend`` pipeline: several architectures' predictions, pooled with weights fitted out of fold."""

from statefarm.pipelines.blend.pipeline import create_pipeline

__all__ = ["create_pipeline"]
