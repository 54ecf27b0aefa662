"""Nodes of ``demo_data``: the generated stand-in dataset."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
from PIL import Image

from statefarm.data import demo_data


def generate_demo_dataset(
    config: demo_data.DemoDataConfig, seed: int
) -> tuple[dict[str, Callable[[], Image.Image]], pd.DataFrame, pd.DataFrame]:
    """Generate the demo images (drawn lazily as they are saved) and the two CSVs."""
    return demo_data.generate_demo_dataset(config, seed)
