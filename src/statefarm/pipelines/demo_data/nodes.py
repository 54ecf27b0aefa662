"""Nodes of ``demo_data``: the generated stand-in dataset."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
from PIL import Image

from statefarm.config import parse_params
from statefarm.data import demo_data


def generate_demo_dataset(
    params: dict[str, Any], seed: int
) -> tuple[dict[str, Callable[[], Image.Image]], pd.DataFrame, pd.DataFrame]:
    """Generate the demo images (drawn lazily as they are saved) and the two CSVs."""
    config = parse_params(demo_data.DemoDataConfig, params, "demo_data")
    return demo_data.generate_demo_dataset(config, seed)
