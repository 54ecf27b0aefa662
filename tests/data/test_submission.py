import numpy as np
import pandas as pd
import pytest

from statefarm.data.layout import CLASS_NAMES
from statefarm.data.submission import SubmissionError, build_submission, validate_submission
from statefarm.datasets import SubmissionDataset
from statefarm.pipelines.submission.pipeline import create_pipeline
from tests.conftest import parameter_datasets


def _predictions(names, seed=0):
    rng = np.random.default_rng(seed)
    raw = rng.dirichlet(np.ones(10) * 0.3, size=len(names))
    frame = pd.DataFrame(raw, columns=list(CLASS_NAMES))
    frame.insert(0, "img", names)
    return frame


@pytest.fixture
def sample_submission():
    frame = pd.DataFrame({"img": [f"img_{k}.jpg" for k in range(6)]})
    for name in CLASS_NAMES:
        frame[name] = 0.1
    return frame


def test_submission_is_clipped_complete_and_in_kaggle_order(sample_submission):
    predictions = _predictions(sample_submission["img"][::-1].tolist())
    predictions.loc[0, list(CLASS_NAMES)] = [1.0] + [0.0] * 9  # a fully confident row
    submission = build_submission(predictions, sample_submission, np.full(10, 0.1), clip=0.01)
    assert list(submission.columns) == ["img", *CLASS_NAMES]
    assert submission["img"].tolist() == sample_submission["img"].tolist()
    probabilities = submission[list(CLASS_NAMES)].to_numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-12)
    assert probabilities.min() >= 0.01 - 1e-15 and probabilities.max() <= 0.99 + 1e-15
    confident = submission.set_index("img").loc[predictions.at[0, "img"]]
    assert confident["c0"] == pytest.approx(1 - 9 * 0.01)  # the most a row can hold when nine entries are >= 0.01


def test_written_probabilities_lie_in_the_documented_range(sample_submission, tmp_path):
    predictions = _predictions(sample_submission["img"].tolist(), seed=3)
    predictions.loc[1, list(CLASS_NAMES)] = [0.999] + [0.001 / 9] * 9
    predictions.loc[2, list(CLASS_NAMES)] = [0.5, 0.5] + [0.0] * 8
    dataset = SubmissionDataset(str(tmp_path / "baseline_submission.csv"))
    dataset.save(build_submission(predictions, sample_submission, np.full(10, 0.1), clip=0.02))
    written = pd.read_csv(next(p for p in tmp_path.rglob("*.csv") if p.is_file()))
    probabilities = written[list(CLASS_NAMES)].to_numpy()
    assert probabilities.min() >= 0.02 - 1e-7 and probabilities.max() <= 0.98 + 1e-7
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(written.loc[2, ["c0", "c1"]].to_numpy(dtype=float), [0.42, 0.42], atol=1e-7)
    # entries inside the range keep their ratios
    row = probabilities[0]
    inside = (row > 0.02 + 1e-6) & (row < 0.98 - 1e-6)
    ratios = row[inside] / predictions.loc[0, list(CLASS_NAMES)].to_numpy(dtype=float)[inside]
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-5)


def test_an_unreadable_test_image_gets_the_prior_with_a_warning(sample_submission, caplog):
    predictions = _predictions(sample_submission["img"][1:].tolist())
    prior = np.linspace(1, 2, 10) / np.linspace(1, 2, 10).sum()
    submission = build_submission(predictions, sample_submission, prior, clip=0.0, unreadable={"img_0.jpg"})
    np.testing.assert_allclose(submission.loc[0, list(CLASS_NAMES)].to_numpy(dtype=float), prior)
    assert "img_0.jpg" in caplog.text


@pytest.mark.parametrize("bad", [np.nan, np.inf, -0.2])
def test_a_broken_prediction_of_a_readable_image_stops_the_submission(sample_submission, bad):
    predictions = _predictions(sample_submission["img"].tolist())
    predictions.loc[[1, 4], "c3"] = bad
    with pytest.raises(SubmissionError, match=r"2 readable test image\(s\) .*'img_1.jpg', 'img_4.jpg'"):
        build_submission(predictions, sample_submission, np.full(10, 0.1), clip=0.01)
    missing = predictions.iloc[2:].assign(c3=0.1)
    with pytest.raises(SubmissionError, match=r"'img_0.jpg', 'img_1.jpg'"):
        build_submission(missing, sample_submission, np.full(10, 0.1), clip=0.01, unreadable={"img_5.jpg"})


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: f.iloc[1:], r"1 test image\(s\) have no row: 'img_0.jpg'"),
        (lambda f: pd.concat([f, f.iloc[[2]]]), r"1 image\(s\) appear more than once: 'img_2.jpg'"),
        (lambda f: f.assign(c3=[np.nan] + [0.1] * 5), r"1 row\(s\) have NaN probabilities: 'img_0.jpg'"),
        (lambda f: f.rename(columns={"img": "image"}), "header must be img,c0,"),
        (lambda f: f[["img", *reversed(CLASS_NAMES)]], "header must be img,c0,"),
        (lambda f: f.assign(c0=0.5), r"6 row\(s\) are not probabilities summing to 1"),
    ],
)
def test_validator_rejects_what_kaggle_would(sample_submission, damage, message):
    with pytest.raises(SubmissionError, match=message):
        validate_submission(damage(sample_submission.copy()), sample_submission["img"])


def test_dataset_never_writes_or_overwrites_with_a_bad_submission(sample_submission, tmp_path):
    dataset = SubmissionDataset(str(tmp_path / "baseline_submission.csv"))
    good = build_submission(_predictions(sample_submission["img"].tolist()), sample_submission, np.full(10, 0.1), 0.01)
    dataset.save(good)
    written = [p for p in tmp_path.rglob("*.csv") if p.is_file()]
    assert len(written) == 1
    with pytest.raises(Exception, match="NaN"):
        dataset.save(good.assign(c1=np.nan))
    assert [p for p in tmp_path.rglob("*.csv") if p.is_file()] == written
    assert not list(tmp_path.rglob(".*partial*"))
    reloaded = SubmissionDataset(str(tmp_path / "baseline_submission.csv")).load()
    pd.testing.assert_frame_equal(reloaded, good, atol=1e-7)


def _submission_catalog(sample_submission, tmp_path, submit):
    from kedro.io import DataCatalog, MemoryDataset
    from kedro_datasets.json import JSONDataset

    index = pd.DataFrame({"img": sample_submission["img"], "split": "test", "valid": True, "label": -1})
    index = pd.concat([index, pd.DataFrame({"img": ["t.jpg"], "split": ["train"], "valid": [True], "label": [3]})])
    return DataCatalog(
        {
            "baseline.test_predictions": MemoryDataset(_predictions(sample_submission["img"].tolist())),
            "sample_submission": MemoryDataset(sample_submission),
            "image_index": MemoryDataset(index),
            **parameter_datasets(
                create_pipeline("baseline"), {"submission": {"clip": 0.01, "submit": submit, "message": "m"}}
            ),
            "baseline.submission": SubmissionDataset(str(tmp_path / "baseline_submission.csv")),
            "baseline.kaggle_receipt": JSONDataset(filepath=str(tmp_path / "receipt.json")),
        }
    )


def test_a_resume_does_not_upload_again_and_a_failed_upload_leaves_no_receipt(sample_submission, tmp_path, monkeypatch):
    from kedro.runner import SequentialRunner

    from statefarm.data.competition import KaggleError

    catalog = _submission_catalog(sample_submission, tmp_path, submit=False)
    SequentialRunner().run(create_pipeline("baseline"), catalog)
    receipt = catalog.load("baseline.kaggle_receipt")
    assert receipt["uploaded"] is False and len(receipt["sha256"]) == 64
    written = (tmp_path / "receipt.json").stat().st_mtime_ns
    SequentialRunner().run(create_pipeline("baseline"), catalog, only_missing_outputs=True)
    assert (tmp_path / "receipt.json").stat().st_mtime_ns == written  # the upload node did not run again

    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no Kaggle credentials anywhere
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "home" / ".kaggle"))
    for name in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "receipt.json").unlink()
    with pytest.raises(KaggleError, match="No Kaggle credentials found"):
        SequentialRunner().run(create_pipeline("baseline"), _submission_catalog(sample_submission, tmp_path, True))
    assert not (tmp_path / "receipt.json").exists()  # the next resume tries the upload again
