"""What the models get wrong, out of fold: the top losses, one frame per moment, and the most confused classes.

The two tables fastai's ``ClassificationInterpretation`` gives (``top_losses``,
``most_confused``), for out-of-fold predictions: each image was predicted by a model that
never saw its driver. State Farm's frames come from videos, so the worst images are often
the same second of one driver seen several times; ``top_losses`` lists one frame of each
such moment, telling them apart by the fold's nearest-neighbour tables.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from statefarm.data.layout import CLASS_NAMES
from statefarm.evaluation.reports import CLASS_DESCRIPTIONS


def _class(label: int) -> str:
    return f"c{label} {CLASS_DESCRIPTIONS[label]}"


def _close_frames(neighbours: Iterable[pd.DataFrame], near: int) -> dict[str, set[str]]:
    """Each image's ``near`` nearest held-out images, both ways: ``img`` -> images of the same moment."""
    close: dict[str, set[str]] = {}
    for table in neighbours:
        names = table["img"].to_numpy()
        columns = [f"neighbour_{k}" for k in range(near) if f"neighbour_{k}" in table]
        for img, nearest in zip(names, names[table[columns].to_numpy()], strict=True):
            for other in nearest:
                if other != img:
                    close.setdefault(img, set()).add(other)
                    close.setdefault(other, set()).add(img)
    return close


def top_losses(oof: pd.DataFrame, neighbours: Iterable[pd.DataFrame] = (), n: int = 12, near: int = 5) -> pd.DataFrame:
    """The ``n`` held-out images with the highest log loss: ``img``, ``subject``, ``actual`` and ``predicted``
    class, ``loss``, ``p_actual`` and ``p_predicted``, worst first.

    Args:
        oof: Out-of-fold predictions (``img``, ``subject``, ``label``, the probabilities ``c0`` .. ``c9``).
        neighbours: Each fold's ``valid_neighbours`` table (``img``, ``neighbour_0``, ... row numbers in it):
            an image among the ``near`` nearest of one listed already (or with it among its own) is another
            frame of the same moment, and is left out.
    """
    probabilities = oof.loc[:, list(CLASS_NAMES)].to_numpy(np.float64)
    labels = oof["label"].to_numpy()
    p_actual = probabilities[np.arange(len(oof)), labels]
    predicted = probabilities.argmax(1)
    table = pd.DataFrame({
        "img": oof["img"].to_numpy(),
        "subject": oof["subject"].to_numpy(),
        "actual": [_class(k) for k in labels],
        "predicted": [_class(k) for k in predicted],
        "loss": -np.log(np.clip(p_actual, 1e-15, None)),
        "p_actual": p_actual,
        "p_predicted": probabilities.max(1),
    })  # fmt: skip
    close, seen, kept = _close_frames(neighbours, near), set(), []
    for row in np.argsort(-table["loss"].to_numpy(), kind="stable"):
        img = table.at[row, "img"]
        if img in seen:
            continue
        kept.append(row)
        seen |= {img} | close.get(img, set())
        if len(kept) == n:
            break
    return table.iloc[kept].reset_index(drop=True)


def most_confused(oof: pd.DataFrame, top: int = 10) -> pd.DataFrame:
    """The class pairs most often mistaken out of fold: ``actual``, ``predicted``, ``images`` and their share of
    the actual class's images, most images first (ties in class order)."""
    predicted = oof.loc[:, list(CLASS_NAMES)].to_numpy().argmax(1)
    labels = oof["label"].to_numpy()
    wrong = pd.DataFrame({"actual": labels, "predicted": predicted})[labels != predicted]
    pairs = wrong.value_counts().rename("images").reset_index()
    pairs["share_of_actual"] = pairs["images"] / pairs["actual"].map(pd.Series(labels).value_counts())
    pairs = pairs.sort_values(["images", "actual", "predicted"], ascending=[False, True, True]).head(top)
    for column in ("actual", "predicted"):
        pairs[column] = pairs[column].map(_class)
    return pairs.reset_index(drop=True)
