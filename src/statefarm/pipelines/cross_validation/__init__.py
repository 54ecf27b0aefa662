"""``cross_validation`` pipeline: out-of-fold scores, calibration and the fold ensemble."""

from statefarm.pipelines.cross_validation.pipeline import create_pipeline

__all__ = ["create_pipeline"]
