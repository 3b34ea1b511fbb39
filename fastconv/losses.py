"""Classification losses returning ``(loss, grad_scores)``.

Both take raw class scores (N, C) and integer labels (N,), average over the
batch, and return the loss as a Python float together with its gradient with
respect to the scores, ready for ``model.backward(grad_scores)``.
"""

import numpy as np

from . import _ext
from . import _validation as _v
from ._typing import Array, Float, Labels

__all__ = ["softmax_cross_entropy", "svm_loss"]


def _check(op, scores, labels):
    scores = _v.check_array(scores, "scores", op, shape_doc="(N, C)")
    N, C = scores.shape
    if N < 1 or C < 1:
        raise ValueError(f"{op}: scores of shape {scores.shape} must be non-empty")
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise TypeError(
            f"{op}: labels must be integer class indices, got dtype "
            f"{labels.dtype}"
        )
    if labels.shape != (N,):
        raise ValueError(
            f"{op}: labels must have shape ({N},) to match scores of shape "
            f"{scores.shape}, got shape {labels.shape}"
        )
    if labels.min() < 0 or labels.max() >= C:
        raise ValueError(
            f"{op}: labels must lie in [0, {C}) for scores of shape "
            f"{scores.shape}, got values in [{labels.min()}, {labels.max()}]"
        )
    return scores, labels.astype(np.intp)


def softmax_cross_entropy(scores: Array[Float],
                          labels: Labels) -> tuple[float, Array[Float]]:
    """Mean softmax cross-entropy, as ``torch.nn.functional.cross_entropy``.

    ``loss = mean_i(logsumexp(scores[i]) - scores[i, labels[i]])``, computed
    with the row maximum subtracted first so that large scores do not
    overflow.

    Parameters
    ----------
    scores : ndarray of shape (N, C), dtype float32 or float64
        Unnormalised class scores (logits).
    labels : ndarray of shape (N,), integer
        Class indices in [0, C).

    Returns
    -------
    loss : float
    grad_scores : ndarray of shape (N, C), dtype of scores
        ``(softmax(scores) - onehot(labels)) / N``.

    Raises
    ------
    TypeError, ValueError
        Bad dtype or rank of scores, non-integer labels, labels of the wrong
        shape or out of range.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv.losses import softmax_cross_entropy
    >>> loss, grad = softmax_cross_entropy(np.zeros((2, 4)), np.array([0, 3]))
    >>> round(loss, 4)                         # log(4)
    1.3863
    """
    scores, labels = _check("softmax_cross_entropy", scores, labels)
    grad = np.empty_like(scores)
    loss = _ext.softmax_xent(scores, labels.astype(np.int64), grad)
    return loss, grad


def svm_loss(scores: Array[Float], labels: Labels,
             margin: float = 1.0) -> tuple[float, Array[Float]]:
    """Mean multiclass hinge (SVM) loss, as in CS231n.

    ``loss = mean_i sum_{j != labels[i]} max(0, scores[i, j] -
    scores[i, labels[i]] + margin)``.  ``torch.nn.functional.multi_margin_loss``
    divides each row's sum by C as well: this loss equals C times it.

    Parameters
    ----------
    scores : ndarray of shape (N, C), dtype float32 or float64
    labels : ndarray of shape (N,), integer
        Class indices in [0, C).
    margin : float

    Returns
    -------
    loss : float
    grad_scores : ndarray of shape (N, C), dtype of scores
        ``1/N`` at each violating class j, ``-count/N`` at the true class
        (count = the number of violating classes in the row).

    Raises
    ------
    TypeError, ValueError
        As :func:`softmax_cross_entropy`.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv.losses import svm_loss
    >>> scores = np.array([[3.2, 5.1, -1.7]])        # CS231n's cat example
    >>> round(svm_loss(scores, np.array([0]))[0], 6)
    2.9
    """
    scores, labels = _check("svm_loss", scores, labels)
    N = scores.shape[0]
    rows = np.arange(N)
    correct = scores[rows, labels][:, None]
    margins = scores - correct + scores.dtype.type(margin)
    margins[rows, labels] = 0
    active = margins > 0
    loss = float(np.where(active, margins, 0).sum() / N)
    grad = active.astype(scores.dtype)
    grad[rows, labels] = -active.sum(axis=1)
    grad /= N
    return loss, grad
