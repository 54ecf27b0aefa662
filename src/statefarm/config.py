"""Parameter schemas: a misspelled or out-of-range key fails before the run, naming the key.

Kedro hands each node its ``params:<group>`` already validated into the schema the node's
signature names (``split: SplitConfig``); ``statefarm.parameters`` checks every group first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError


class Params(BaseModel):
    """Base of every parameter schema: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


P = TypeVar("P", bound=Params)


def parse_params(schema: type[P], params: Mapping[str, Any] | None, key: str) -> P:
    """Validate the parameter dict ``params:<key>`` against ``schema``.

    Raises:
        ValueError: Naming every bad entry as ``<key>.<field>``, e.g. ``split.n_fold``.
    """
    try:
        return schema.model_validate(dict(params or {}))
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(part for part in [key, *map(str, problem['loc'])] if part)}: {problem['msg']}"
            for problem in error.errors()
        )
        raise ValueError(f"Invalid parameters: {problems}") from None


def with_keys(params: P, keys: Mapping[str, Any], key: str) -> P:
    """``params`` with ``keys`` put over the keys it was given, validated again; errors name ``<key>.<field>``."""
    return parse_params(type(params), {**params.model_dump(exclude_unset=True), **keys}, key) if keys else params
