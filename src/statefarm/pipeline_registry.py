"""Project pipelines."""

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline


def register_pipelines() -> dict[str, Pipeline]:
    """Register every pipeline under ``pipelines/`` by its folder name.

    ``__default__`` is ``pseudo_label``, the whole chain: validate, cache, split, tune
    augmentation, train, predict, submit, then the same with pseudo-labels.

    Returns:
        A mapping from pipeline names to ``Pipeline`` objects.
    """
    pipelines = find_pipelines(raise_errors=True)
    if "pseudo_label" in pipelines:  # Kedro loads only the pipelines a run asks for
        pipelines["__default__"] = pipelines["pseudo_label"]
    return pipelines
