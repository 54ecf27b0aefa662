"""A generated stand-in for the competition data, in Kaggle's exact layout.

Not real data: it lets the whole DAG run on a CPU in minutes with no download.
Each image is a cartoon driver seen from the passenger side: a steering wheel,
a torso, and a hand whose position relative to the wheel says the class. Every
driver adds nuisance the model must learn to ignore: lighting, colour cast, a
shifted seat position, and a personal way of doing each action (the hand lands
somewhat off the class's usual spot). Images of one driver are near-copies, as
in the real competition, so a random split scores visibly better than a split
by driver.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd
from PIL import Image
from pydantic import Field

from statefarm.config import Params
from statefarm.data.layout import CLASS_NAMES


class DemoDataConfig(Params):
    """Size and difficulty of the generated dataset."""

    train_drivers: int = Field(12, ge=2)
    test_drivers: int = Field(4, ge=1)
    images_per_driver_class: int = Field(20, ge=1, description="train images per driver and class")
    test_images_per_driver_class: int = Field(6, ge=1)
    image_size: tuple[int, int] = Field((120, 160), description="(height, width) in pixels")
    driver_style: float = Field(
        0.35, ge=0, description="how far a driver's hand strays from the class's spot, in anchor gaps"
    )
    noise: float = Field(6.0, ge=0, description="pixel noise standard deviation, 0..255 scale")


@dataclass(frozen=True)
class DriverLook:
    """One driver's nuisance: lighting, colour cast, seat position and personal style."""

    brightness: float
    colour_cast: tuple[float, float, float]
    shirt: tuple[int, int, int]
    background: tuple[int, int, int]
    offset: tuple[float, float]  # (dy, dx) as fractions of the image
    style: tuple[tuple[float, float], ...]  # per class, (dy, dx) as fractions of the image


@dataclass(frozen=True)
class DemoImage:
    """Everything needed to draw one image, so it can be drawn lazily when saved."""

    look: DriverLook
    label: int
    seed: int
    image_size: tuple[int, int]
    noise: float


def _class_anchor(label: int) -> tuple[float, float]:
    """Where the hand sits for a class, relative to the wheel centre, in image fractions."""
    angle = 2 * np.pi * label / len(CLASS_NAMES)
    return 0.30 * np.sin(angle), 0.24 * np.cos(angle)


def _anchor_gap() -> float:
    (y0, x0), (y1, x1) = _class_anchor(0), _class_anchor(1)
    return float(np.hypot(y1 - y0, x1 - x0))


def _disc(yy: np.ndarray, xx: np.ndarray, centre: tuple[float, float], radius: float) -> np.ndarray:
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def draw_demo_image(spec: DemoImage) -> Image.Image:
    """Draw one demo image deterministically from its spec."""
    rng = np.random.default_rng(spec.seed)
    height, width = spec.image_size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    yy, xx = yy / height, xx / width
    look = spec.look
    canvas = np.empty((height, width, 3), np.float32)
    canvas[:] = look.background
    canvas *= (0.75 + 0.5 * yy)[..., None]  # light falls off towards the floor

    dy, dx = look.offset
    jitter = rng.normal(0, 0.012, size=2)
    wheel = (0.55 + dy + jitter[0], 0.62 + dx + jitter[1])
    torso = (0.75 + dy, 0.25 + dx)
    canvas[((yy - torso[0]) / 0.32) ** 2 + ((xx - torso[1]) / 0.2) ** 2 <= 1] = look.shirt
    ring = _disc(yy, xx, wheel, 0.16) & ~_disc(yy, xx, wheel, 0.12)
    canvas[ring] = (35, 35, 40)
    anchor = _class_anchor(spec.label)
    style = look.style[spec.label]
    hand_jitter = rng.normal(0, 0.015, size=2)
    hand = (
        wheel[0] + anchor[0] + style[0] + hand_jitter[0],
        wheel[1] + anchor[1] + style[1] + hand_jitter[1],
    )
    canvas[_disc(yy * height / width, xx, (hand[0] * height / width, hand[1]), 0.045)] = (225, 180, 150)

    canvas *= look.brightness * np.asarray(look.colour_cast, np.float32)
    canvas += rng.normal(0, spec.noise, size=canvas.shape)
    return Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8), mode="RGB")


def _driver_look(rng: np.random.Generator, config: DemoDataConfig) -> DriverLook:
    gap = _anchor_gap()
    style = rng.normal(0, config.driver_style * gap / 2, size=(len(CLASS_NAMES), 2))
    return DriverLook(
        brightness=float(rng.uniform(0.6, 1.3)),
        colour_cast=tuple(float(c) for c in rng.uniform(0.8, 1.2, size=3)),
        shirt=tuple(int(c) for c in rng.integers(30, 200, size=3)),
        background=tuple(int(c) for c in rng.integers(60, 150, size=3)),
        offset=(float(rng.uniform(-0.06, 0.06)), float(rng.uniform(-0.08, 0.08))),
        style=tuple((float(y), float(x)) for y, x in style),
    )


def generate_demo_dataset(
    config: DemoDataConfig, seed: int
) -> tuple[dict[str, Callable[[], Image.Image]], pd.DataFrame, pd.DataFrame]:
    """Make a stand-in for the competition's files.

    Args:
        config: Drivers, images and difficulty.
        seed: Makes the dataset reproducible: same seed, same bytes.

    Returns:
        ``(images, driver_list, sample_submission)``: ``images`` maps
        ``train/cK/img_N`` and ``test/img_N`` to functions that draw the image
        (saved lazily, one at a time); the two CSVs as Kaggle ships them.
    """
    rng = np.random.default_rng(seed)
    total = config.train_drivers + config.test_drivers
    driver_numbers = rng.choice(np.arange(2, max(100, 2 * total + 2)), size=total, replace=False)
    drivers = [f"p{n:03d}" for n in sorted(driver_numbers)]
    rng.shuffle(drivers)
    train_drivers, test_drivers = sorted(drivers[: config.train_drivers]), sorted(drivers[config.train_drivers :])

    jobs = [
        (driver, label, "train")
        for driver in train_drivers
        for label in range(len(CLASS_NAMES))
        for _ in range(config.images_per_driver_class)
    ] + [
        (driver, label, "test")
        for driver in test_drivers
        for label in range(len(CLASS_NAMES))
        for _ in range(config.test_images_per_driver_class)
    ]
    numbers = rng.permutation(np.arange(1, 4 * len(jobs) + 1))[: len(jobs)]
    looks = {driver: _driver_look(rng, config) for driver in drivers}
    image_seeds = rng.integers(0, 2**63, size=len(jobs))

    images: dict[str, Callable[[], Image.Image]] = {}
    driver_rows, test_names = [], []
    for (driver, label, split), number, image_seed in zip(jobs, numbers, image_seeds, strict=True):
        name = f"img_{number}"
        spec = DemoImage(looks[driver], label, int(image_seed), tuple(config.image_size), config.noise)
        if split == "train":
            images[f"train/{CLASS_NAMES[label]}/{name}"] = partial(draw_demo_image, spec)
            driver_rows.append((driver, CLASS_NAMES[label], f"{name}.jpg"))
        else:
            images[f"test/{name}"] = partial(draw_demo_image, spec)
            test_names.append(f"{name}.jpg")

    driver_list = pd.DataFrame(driver_rows, columns=["subject", "classname", "img"])
    test_names.sort()
    sample_submission = pd.DataFrame({"img": test_names})
    for class_name in CLASS_NAMES:
        sample_submission[class_name] = 1 / len(CLASS_NAMES)
    return images, driver_list, sample_submission
