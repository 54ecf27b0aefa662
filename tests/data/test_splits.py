import pandas as pd
import pytest

from statefarm.config import parse_params
from statefarm.data.splits import (
    DriverLeakError,
    SampleConfig,
    SplitConfig,
    assign_folds,
    check_disjoint,
    make_sample,
    split_fold,
)


def split_by_driver(train_images: pd.DataFrame, config: SplitConfig, seed: int) -> dict:
    """The split of ``config``'s single fold (or named drivers), as the pipeline makes it."""
    folds = assign_folds(train_images, config, seed)
    return split_fold(train_images, folds, config.folds[0]) | {"driver_folds": folds["driver_folds"]}


@pytest.fixture(scope="module")
def train_images() -> pd.DataFrame:
    """12 drivers with uneven image counts, all 10 classes each."""
    rows = []
    for d in range(12):
        for label in range(10):
            for k in range(3 + (d * label) % 4):
                rows.append((f"img_{d}_{label}_{k}.jpg", f"p{d:03d}", label))
    return pd.DataFrame(rows, columns=["img", "subject", "label"])


def test_every_fold_is_disjoint_and_every_driver_validates_once(train_images):
    validated = []
    for fold in range(4):
        record = split_by_driver(train_images, SplitConfig(n_folds=4, fold=fold), seed=7)
        assert not set(record["train_drivers"]) & set(record["valid_drivers"])
        assert sorted(record["train_drivers"] + record["valid_drivers"]) == sorted(train_images["subject"].unique())
        assert record["n_train_images"] + record["n_valid_images"] == len(train_images)
        assert (
            record["driver_folds"]
            == split_by_driver(train_images, SplitConfig(n_folds=4, fold=0), seed=7)["driver_folds"]
        )
        validated += record["valid_drivers"]
    assert sorted(validated) == sorted(train_images["subject"].unique())


def test_fold_all_plans_every_fold_and_a_fold_not_planned_is_refused(train_images):
    folds = assign_folds(train_images, SplitConfig(n_folds=4, fold="all"), seed=7)
    assert folds["folds"] == [0, 1, 2, 3]
    assert sorted(set(folds["driver_folds"].values())) == [0, 1, 2, 3]
    single = assign_folds(train_images, SplitConfig(n_folds=4, fold=2), seed=7)
    assert single["folds"] == [2] and single["driver_folds"] == folds["driver_folds"]
    with pytest.raises(ValueError, match=r"fold 1 is not among the folds the split parameters plan \(\[2\]\)"):
        split_fold(train_images, single, 1)


def test_seed_changes_the_folds_and_repeats_them(train_images):
    first = split_by_driver(train_images, SplitConfig(n_folds=4), seed=1)
    assert split_by_driver(train_images, SplitConfig(n_folds=4), seed=1) == first
    others = [split_by_driver(train_images, SplitConfig(n_folds=4), seed=s)["valid_drivers"] for s in range(2, 8)]
    assert any(valid != first["valid_drivers"] for valid in others)


def test_named_validation_drivers(train_images):
    config = SplitConfig(valid_drivers=["p003", "p007"])
    assert config.folds == [0]
    record = split_by_driver(train_images, config, seed=0)
    assert record["strategy"] == "named_drivers"
    assert record["valid_drivers"] == ["p003", "p007"]
    assert len(record["train_drivers"]) == 10
    assert record["n_valid_images"] == int(train_images["subject"].isin(["p003", "p007"]).sum())


def test_unknown_validation_driver_is_named(train_images):
    with pytest.raises(ValueError, match=r"split.valid_drivers names unknown driver\(s\) \['p999'\]"):
        split_by_driver(train_images, SplitConfig(valid_drivers=["p001", "p999"]), seed=0)


def test_more_folds_than_drivers_is_refused(train_images):
    with pytest.raises(ValueError, match="n_folds is 13 but there are only 12 drivers"):
        split_by_driver(train_images, SplitConfig(n_folds=13), seed=0)


def test_misspelled_or_out_of_range_split_parameters_fail_loudly():
    with pytest.raises(ValueError, match=r"split.n_fold"):
        parse_params(SplitConfig, {"n_fold": 5}, "split")
    with pytest.raises(ValueError, match=r"fold must be 'all' or from 0 to n_folds - 1 \(4\)"):
        parse_params(SplitConfig, {"n_folds": 5, "fold": 5}, "split")
    with pytest.raises(ValueError, match=r"split.fold"):
        parse_params(SplitConfig, {"fold": "every"}, "split")


def test_a_driver_on_both_sides_stops_the_run():
    with pytest.raises(DriverLeakError, match=r"\['p002'\] are in both"):
        check_disjoint(["p001", "p002"], ["p002", "p003"])


def test_sample_keeps_the_split_and_caps_images_per_class(train_images):
    record = split_by_driver(train_images, SplitConfig(n_folds=4), seed=3)
    sample = make_sample(
        train_images, record, SampleConfig(train_drivers=3, valid_drivers=2, images_per_class=2), seed=3
    )
    train, valid = sample[sample["role"] == "train"], sample[sample["role"] == "valid"]
    assert train["subject"].nunique() == 3 and set(train["subject"]) <= set(record["train_drivers"])
    assert valid["subject"].nunique() == 2 and set(valid["subject"]) <= set(record["valid_drivers"])
    assert train.groupby("label").size().eq(2).all() and valid.groupby("label").size().eq(2).all()
    assert set(sample["img"]) <= set(train_images["img"])
    again = make_sample(
        train_images, record, SampleConfig(train_drivers=3, valid_drivers=2, images_per_class=2), seed=3
    )
    pd.testing.assert_frame_equal(sample, again)


def test_sample_cannot_ask_for_more_drivers_than_the_split_has(train_images):
    record = split_by_driver(train_images, SplitConfig(n_folds=4), seed=3)
    with pytest.raises(ValueError, match="sample.valid_drivers is 5 but the split has only 3 valid drivers"):
        make_sample(train_images, record, SampleConfig(valid_drivers=5), seed=3)


def test_sample_refuses_a_leaky_split(train_images):
    leaky = {"train_drivers": ["p001", "p002"], "valid_drivers": ["p002"]}
    with pytest.raises(DriverLeakError):
        make_sample(train_images, leaky, SampleConfig(train_drivers=1, valid_drivers=1), seed=0)
