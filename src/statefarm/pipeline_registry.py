"""Project pipelines."""

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline


def register_pipelines() -> dict[str, Pipeline]:
    """Register every pipeline under ``pipelines/`` by its folder name.

    ``__default__`` is everything but ``demo_data`` (which only writes the generated
    stand-in dataset): validate, cache, split, train, predict, submit.

    Returns:
        A mapping from pipeline names to ``Pipeline`` objects.
    """
    pipelines = find_pipelines(raise_errors=True)
    pipelines["__default__"] = sum((pipe for name, pipe in pipelines.items() if name != "demo_data"), Pipeline([]))
    return pipelines
