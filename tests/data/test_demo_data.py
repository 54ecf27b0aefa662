import hashlib
import io

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, KFold, cross_val_score

from statefarm.data.demo_data import DemoDataConfig, generate_demo_dataset
from statefarm.data.layout import CLASS_NAMES, validate_driver_list, validate_sample_submission

SMALL = DemoDataConfig(
    train_drivers=3, test_drivers=2, images_per_driver_class=2, test_images_per_driver_class=1, image_size=(30, 40)
)


def _jpeg_digest(images: dict) -> str:
    digest = hashlib.sha256()
    for key in sorted(images):
        buffer = io.BytesIO()
        images[key]().save(buffer, format="JPEG", quality=90)
        digest.update(key.encode() + buffer.getvalue())
    return digest.hexdigest()


def test_same_seed_same_bytes_other_seed_other_bytes():
    first = generate_demo_dataset(SMALL, seed=5)
    again = generate_demo_dataset(SMALL, seed=5)
    other = generate_demo_dataset(SMALL, seed=6)
    assert _jpeg_digest(first[0]) == _jpeg_digest(again[0]) != _jpeg_digest(other[0])
    pd.testing.assert_frame_equal(first[1], again[1])


def test_layout_and_csvs_are_kaggles():
    images, driver_list, sample_submission = generate_demo_dataset(SMALL, seed=0)
    assert validate_driver_list(driver_list).shape == (3 * 10 * 2, 3)
    assert list(sample_submission.columns) == ["img", *CLASS_NAMES]
    validate_sample_submission(sample_submission)
    train_keys = {f"train/{row.classname}/{row.img.removesuffix('.jpg')}" for row in driver_list.itertuples()}
    test_keys = {f"test/{img.removesuffix('.jpg')}" for img in sample_submission["img"]}
    assert set(images) == train_keys | test_keys
    assert len(test_keys) == 2 * 10
    assert set(driver_list["subject"]).isdisjoint({"p000", "p001"})  # Kaggle's names start at p002
    image = next(iter(images.values()))()
    assert image.size == (40, 30) and image.mode == "RGB"
    names = [key.rsplit("/", 1)[1] for key in images]
    assert len(set(names)) == len(names)  # one image name is one image, train or test


def _pixels(config: DemoDataConfig, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    images, driver_list, _ = generate_demo_dataset(config, seed)
    features, labels, drivers = [], [], []
    for row in driver_list.itertuples():
        image = images[f"train/{row.classname}/{row.img.removesuffix('.jpg')}"]()
        features.append(np.asarray(image, np.float32).ravel() / 255)
        labels.append(CLASS_NAMES.index(row.classname))
        drivers.append(row.subject)
    return np.stack(features), np.asarray(labels), np.asarray(drivers)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_class_signal_is_learnable_and_a_random_split_flatters():
    """The property the demo exists for: it learns, and only a driver split tells the truth."""
    config = DemoDataConfig(
        train_drivers=8, test_drivers=1, images_per_driver_class=6, test_images_per_driver_class=1, image_size=(24, 32)
    )
    x, y, drivers = _pixels(config, seed=0)
    model = LogisticRegression(C=0.5, max_iter=300)
    by_driver = cross_val_score(model, x, y, cv=GroupKFold(n_splits=4), groups=drivers).mean()
    random = cross_val_score(model, x, y, cv=KFold(n_splits=4, shuffle=True, random_state=0)).mean()
    chance = 1 / len(CLASS_NAMES)
    assert by_driver > 2 * chance, by_driver
    assert random > by_driver + 0.15, (random, by_driver)
