"""Top losses list one frame per moment; the most confused pairs are counted and ranked."""

import numpy as np
import pandas as pd
import pytest

from statefarm.evaluation.error_analysis import most_confused, top_losses


def _oof(rows: list[tuple[str, str, int, int, float]]) -> pd.DataFrame:
    """``(img, subject, label, predicted, probability of predicted)``; the rest spread evenly."""
    table = []
    for img, subject, label, predicted, p in rows:
        probabilities = np.full(10, (1 - p) / 9)
        probabilities[predicted] = p
        table.append({"img": img, "subject": subject, "label": label, **{f"c{k}": probabilities[k] for k in range(10)}})
    return pd.DataFrame(table)


def test_top_losses_are_worst_first_with_what_was_said_and_one_frame_per_moment():
    oof = _oof([
        ("a.jpg", "p1", 0, 3, 0.90),  # wrong and sure: the worst
        ("a_next.jpg", "p1", 0, 3, 0.89),  # the next frame of the same moment: left out
        ("b.jpg", "p2", 1, 2, 0.60),
        ("c.jpg", "p2", 4, 4, 0.50),  # right, not sure
        ("d.jpg", "p2", 1, 1, 0.99),  # right and sure: b's nearest and c's
    ])  # fmt: skip
    nearest = {"neighbour_0": [1, 0, 4, 4, 2], "neighbour_1": [2, 2, 0, 0, 0]}  # row numbers; only the first counts
    neighbours = pd.DataFrame({"img": oof["img"], **nearest})
    worst = top_losses(oof, [neighbours], n=3, near=1)
    assert worst["img"].tolist() == ["a.jpg", "b.jpg", "c.jpg"]
    first = worst.iloc[0]
    assert (first["subject"], first["actual"], first["predicted"]) == ("p1", "c0 safe driving", "c3 texting - left")
    assert first["loss"] == pytest.approx(-np.log(0.1 / 9)) and first["p_predicted"] == pytest.approx(0.9)
    assert first["p_actual"] == pytest.approx(0.1 / 9)
    assert top_losses(oof, n=2)["img"].tolist() == ["a.jpg", "a_next.jpg"]  # without neighbours, every frame counts


def test_most_confused_ranks_the_class_pairs_by_images_with_their_share_of_the_class():
    oof = _oof([
        ("1", "p1", 0, 3, 0.5), ("2", "p1", 0, 3, 0.5), ("3", "p1", 0, 0, 0.5), ("4", "p1", 0, 1, 0.5),
        ("5", "p2", 7, 1, 0.5), ("6", "p2", 7, 7, 0.5),
    ])  # fmt: skip
    pairs = most_confused(oof)
    assert pairs[["actual", "predicted", "images"]].values.tolist() == [
        ["c0 safe driving", "c3 texting - left", 2],
        ["c0 safe driving", "c1 texting - right", 1],
        ["c7 reaching behind", "c1 texting - right", 1],
    ]
    assert pairs["share_of_actual"].tolist() == pytest.approx([0.5, 0.25, 0.5])
    assert len(most_confused(oof, top=1)) == 1
