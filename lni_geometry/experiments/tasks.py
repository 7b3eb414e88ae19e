"""Tasks that need no download: scikit-learn's bundled digits, with a fixed split.

``load_digits`` ships inside the scikit-learn wheel (1797 grey-level 8x8 images
of handwritten digits, values 0..16, 10 classes), so every run here is offline.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Task", "TASKS", "load_task"]

#: Tasks known to :func:`load_task`.
TASKS = ("digits",)

#: Seed of the fixed train/test split (part of the task, not of a run).
SPLIT_SEED = 20240
#: Test images held out of the 1797.
TEST_SIZE = 360


class Task(NamedTuple):
    """A classification task as numpy arrays.

    ``x_train``, ``x_test`` are float32 of shape ``(N, 1, 8, 8)`` scaled to
    ``[0, 1]`` then standardised with the training mean and standard deviation
    (one scalar each); ``y_*`` are int64 labels in ``0..classes-1``.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: int


_CACHE = {}


def load_task(name="digits"):
    """Load a task by name (cached per process).

    Parameters
    ----------
    name : {"digits"}
        ``"digits"``: :func:`sklearn.datasets.load_digits`, split once into
        1437 training and 360 test images by a stratified split with a fixed
        seed (``SPLIT_SEED``), identical on every machine.

    Returns
    -------
    Task

    Raises
    ------
    ValueError
        For an unknown task name.
    ImportError
        Without scikit-learn (``pip install scikit-learn``).

    Examples
    --------
    >>> t = load_task("digits")
    >>> t.x_train.shape, t.x_test.shape, t.classes
    ((1437, 1, 8, 8), (360, 1, 8, 8), 10)
    """
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; tasks are {TASKS}")
    if name in _CACHE:
        return _CACHE[name]
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the digits task needs scikit-learn: pip install scikit-learn") from exc
    data = load_digits()
    x = (data.images.astype(np.float64) / 16.0)[:, None, :, :]
    y = data.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=TEST_SIZE, random_state=SPLIT_SEED, stratify=y)
    mean, std = x_tr.mean(), x_tr.std()
    task = Task(name, ((x_tr - mean) / std).astype(np.float32), y_tr,
                ((x_te - mean) / std).astype(np.float32), y_te, 10)
    _CACHE[name] = task
    return task
