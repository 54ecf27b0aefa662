import numpy as np
import pytest

from statefarm.modeling.augment import build_transform


def test_spec_builds_a_seeded_albumentations_pipeline():
    spec = [{"Affine": {"translate_percent": [-0.2, 0.2], "p": 1.0}}, {"GaussianBlur": {"blur_limit": [3, 3]}}]
    image = np.random.default_rng(0).integers(0, 255, (24, 32, 3), dtype=np.uint8)
    first = build_transform(spec, seed=3)(image=image)["image"]
    again = build_transform(spec, seed=3)(image=image)["image"]
    np.testing.assert_array_equal(first, again)
    assert first.dtype == np.uint8 and first.shape == image.shape
    assert build_transform([]) is None and build_transform(None) is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ([{"Afine": {}}], r"augment\[0\]: albumentations has no transform named 'Afine'"),
        (
            [{"Affine": {"rotate": 5}}, {"Affine": {"rotation": 5}}],
            r"augment\[1\] \(Affine\): unknown argument\(s\) \['rotation'\]",
        ),
        ([{"Affine": {}, "Blur": {}}], r"augment\[0\]: expected one 'TransformName"),
        ([{"CoarseDropout": {"num_holes_range": [5, 1]}}], r"augment\[0\] \(CoarseDropout\): invalid arguments"),
    ],
)
def test_bad_entries_are_named(spec, message):
    with pytest.raises(ValueError, match=message):
        build_transform(spec)
