"""``pseudo_label`` pipeline: pseudo-labels from each fold's baseline (or the baselines' blend), and the comparison."""

from statefarm.pipelines.pseudo_label.pipeline import create_blended_pipeline, create_comparison, create_pipeline

__all__ = ["create_blended_pipeline", "create_comparison", "create_pipeline"]
