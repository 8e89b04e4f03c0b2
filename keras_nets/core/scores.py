"""Reading a model's class scores honestly: NaN is an error, a tie counts against the true class.

    refuse_nan(scores, ["a.jpg", "b.jpg"])         # ValueError naming a.jpg if its row has NaN
    ranks(scores, truths)                          # other classes scoring at least as high
    predicted(scores, truths)                      # argmax that agrees with ranks == 0

Every place that ranks scores goes through here (`evaluation.evaluate`, `imagenet.top_classes`
for predict and decode_predictions, `keras-nets explain`), so a broken model (NaN outputs) or a
degenerate one (every class the same score) never reads as a good one. An image is top-k correct
only when fewer than k other classes score *at least* as high as its own class: a uniform softmax
is 0 % top-1, not 100 %.
"""

import numpy as np


class NaNScoresError(ValueError):
    """A model gave NaN scores: they cannot be ranked, so nothing is counted or shown."""


def refuse_nan(scores, names=None, what="preds"):
    """Raises NaNScoresError, one line naming the first row with a NaN score: `names[row]` (an
    image) when given, else "`what` row N"."""
    scores = np.asarray(scores)
    rows = np.flatnonzero(np.isnan(scores.reshape(len(scores), -1)).any(axis=1))
    if not rows.size:
        return
    if names is None:
        found = f"{what} row {rows[0]} has NaN scores ({rows.size} of {len(scores)} rows do)"
    else:
        found = f"the model's scores for {names[rows[0]]} are NaN ({rows.size} of {len(scores)})"
    raise NaNScoresError(f"{found}: NaN cannot be ranked; the model's weights or input are broken")


def ranks(scores, truths):
    """For each row, how many *other* classes score at least as high as class `truths[row]`.

    A row is top-k correct when its rank is below k; a tie is not a win.
    """
    scores = np.asarray(scores)
    rows = np.arange(len(scores))
    own = scores[rows, truths][:, None]
    return np.sum(scores >= own, axis=1).astype("int64") - 1  # minus the class itself


def predicted(scores, truths):
    """The predicted class of each row as the confusion matrix counts it: `truths[row]` only when
    it scores strictly highest (rank 0), else the highest-scoring other class."""
    scores = np.array(scores, dtype="float64")
    rows = np.arange(len(scores))
    correct = ranks(scores, truths) == 0
    scores[rows, truths] = -np.inf
    return np.where(correct, truths, np.argmax(scores, axis=1))


def best_first(row):
    """Class indices of one row of scores, best first; ties in class order (stable)."""
    return np.argsort(-np.asarray(row), kind="stable")
