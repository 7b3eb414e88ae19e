"""Tasks that need no download: scikit-learn's bundled digits, and CIFAR from a local folder.

``load_digits`` ships inside the scikit-learn wheel (1797 grey-level 8x8 images
of handwritten digits, values 0..16, 10 classes), so every run on it is offline.
``"cifar10"`` and ``"cifar100"`` (the seed paper's datasets) are read from a
folder that holds the official archives unpacked (:mod:`.cifar`), never
downloaded.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Task", "TASKS", "load_task"]

#: Tasks known to :func:`load_task`.
TASKS = ("digits", "cifar10", "cifar100")
#: The tasks read from a data folder.
CIFAR_TASKS = ("cifar10", "cifar100")

#: Seed of the fixed train/test split (part of the task, not of a run).
SPLIT_SEED = 20240
#: Test images held out of the 1797.
TEST_SIZE = 360


class Task(NamedTuple):
    """A classification task as numpy arrays.

    ``x_train``, ``x_test`` are float32 of shape ``(N, C, H, W)`` scaled to
    ``[0, 1]`` then standardised with the training mean and standard deviation
    (digits: ``(N, 1, 8, 8)``, one scalar each; CIFAR: ``(N, 3, 32, 32)``, per
    channel); ``y_*`` are int64 labels in ``0..classes-1``.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: int


_CACHE = {}


def load_task(name="digits", data_dir=None):
    """Load a task by name (cached per process).

    Parameters
    ----------
    name : {"digits", "cifar10", "cifar100"}
        ``"digits"``: :func:`sklearn.datasets.load_digits`, split once into
        1437 training and 360 test images by a stratified split with a fixed
        seed (``SPLIT_SEED``), identical on every machine.  ``"cifar10"``,
        ``"cifar100"``: the official training and test sets
        (:func:`lni_geometry.experiments.cifar.read_cifar`; CIFAR-100's fine
        labels), normalised by the training set's channel means and standard
        deviations.
    data_dir : str, optional
        The CIFAR tasks' data folder (default: the environment variable
        ``LNI_GEOMETRY_DATA``); must be None for ``"digits"``.

    Returns
    -------
    Task

    Raises
    ------
    ValueError
        For an unknown task name, or a ``data_dir`` given to ``"digits"``.
    FileNotFoundError, lni_geometry.experiments.cifar.CifarError
        A missing, incomplete or corrupt CIFAR folder (one line saying which
        file, and where the datasets are published).
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
    if name in CIFAR_TASKS:
        return _load_cifar(name, data_dir)
    if data_dir is not None:
        raise ValueError(f"data_dir is for the CIFAR tasks {CIFAR_TASKS}; task {name!r} takes data_dir=None")
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


def _channel_stats(x):
    """Per-channel mean and standard deviation of uint8 images ``(N, C, H, W)`` scaled to
    ``[0, 1]``, exact, from the histogram of each channel's 256 values."""
    values = np.arange(256, dtype=np.float64) / 255.0
    mean, std = [], []
    for c in range(x.shape[1]):
        counts = np.bincount(x[:, c].reshape(-1), minlength=256).astype(np.float64)
        m = counts @ values / counts.sum()
        mean.append(m)
        std.append(np.sqrt(counts @ (values - m) ** 2 / counts.sum()))
    return np.array(mean), np.array(std)


def _load_cifar(name, data_dir):
    from .cifar import data_identity, read_cifar

    key = (name, data_identity(name, data_dir)["sha256"])
    if key in _CACHE:
        return _CACHE[key]
    d = read_cifar(name, data_dir)
    mean, std = _channel_stats(d["x_train"])
    std = np.where(std > 0, std, 1.0)  # a constant channel is only centred
    shape = (1, -1, 1, 1)

    def norm(x):
        out = x.astype(np.float32)
        out /= np.float32(255.0)
        out -= mean.astype(np.float32).reshape(shape)
        out /= std.astype(np.float32).reshape(shape)
        return out

    task = Task(name, norm(d["x_train"]), d["y_train"], norm(d["x_test"]), d["y_test"], d["classes"])
    _CACHE[key] = task
    return task
