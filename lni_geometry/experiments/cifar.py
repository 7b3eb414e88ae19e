"""CIFAR-10 and CIFAR-100 from a local folder, never from the network.

The seed paper trains on CIFAR (Krizhevsky 2009, "Learning Multiple Layers of
Features from Tiny Images"; https://www.cs.toronto.edu/~kriz/cifar.html).  This
module reads the official distributions, as unpacked by ``tar xzf``, from a
folder given as ``data_dir=`` or by the environment variable
:data:`DATA_ENV` (``LNI_GEOMETRY_DATA``), in either of their two formats:

- the "python version": ``cifar-10-batches-py/`` (``data_batch_1`` to
  ``data_batch_5``, ``test_batch``, ``batches.meta``) and ``cifar-100-python/``
  (``train``, ``test``, ``meta``): pickled dicts with bytes keys
  (``b"data"``: a uint8 array ``(N, 3072)``, channel-major 32x32 images;
  ``b"labels"`` or ``b"fine_labels"``: a list of ints), written by Python 2
  (read with ``encoding="bytes"``);
- the "binary version": ``cifar-10-batches-bin/`` (``data_batch_1.bin`` to
  ``data_batch_5.bin``, ``test_batch.bin``; records of 1 label byte and 3072
  image bytes) and ``cifar-100-binary/`` (``train.bin``, ``test.bin``; records of
  a coarse and a fine label byte and 3072 image bytes).

The folder given may hold those subfolders or be one of them.  Where both
formats are there, the python version is read.  CIFAR-100 is read with its
fine labels (100 classes).

A pickle can run any code when it is loaded.  The python batches are read by a
restricted unpickler (:func:`read_python_batch`) that admits only what the
format holds (numpy's uint8 array reconstruction), so that a file crafted to
run a command raises an error instead, with nothing run.

The identity of a copy (:func:`data_identity`: its files' names, sizes and
SHA-256, computed once per process) is part of a training run's cache key, so
that a different copy never serves a cached run.  :func:`write_cifar` writes
arrays in both official layouts (test copies, subsets).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import struct

import numpy as np

__all__ = ["CIFAR_URL", "DATA_ENV", "CifarError", "augment_batch", "augmentation_draws", "data_identity",
           "read_cifar", "read_python_batch", "resolve_data_dir", "synthetic_cifar", "write_cifar"]

#: Where the datasets are published.
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
#: The environment variable naming the data folder when no ``data_dir`` is given.
DATA_ENV = "LNI_GEOMETRY_DATA"

#: Image bytes of one record (3 channels of 32x32, channel-major).
IMAGE_BYTES = 3 * 32 * 32

#: Per dataset: classes, the label key of the python batches, and per format the
#: folder, the training files, the test file and the metadata file (None: none read).
LAYOUTS = {
    "cifar10": {
        "title": "CIFAR-10", "classes": 10, "label_key": b"labels", "meta_key": b"label_names",
        "python": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], "test_batch", "batches.meta"),
        "binary": ("cifar-10-batches-bin", [f"data_batch_{i}.bin" for i in range(1, 6)], "test_batch.bin", None),
    },
    "cifar100": {
        "title": "CIFAR-100", "classes": 100, "label_key": b"fine_labels", "meta_key": b"fine_label_names",
        "python": ("cifar-100-python", ["train"], "test", "meta"),
        "binary": ("cifar-100-binary", ["train.bin"], "test.bin", None),
    },
}
FORMATS = ("python", "binary")


class CifarError(ValueError):
    """A CIFAR file that is not what the official distribution holds (corrupt, truncated, crafted)."""


class CifarNotFoundError(FileNotFoundError):
    """The data folder lacks the files of the dataset asked for."""


def _check_name(name):
    if name not in LAYOUTS:
        raise ValueError(f"dataset must be one of {tuple(LAYOUTS)}, got {name!r}")


def resolve_data_dir(data_dir=None):
    """The data folder: ``data_dir``, else the environment variable :data:`DATA_ENV`.

    Returns
    -------
    str
        An absolute path.

    Raises
    ------
    CifarNotFoundError
        Neither is given, or the folder does not exist.
    """
    if data_dir is None:
        data_dir = os.environ.get(DATA_ENV) or None
        if data_dir is None:
            raise CifarNotFoundError(f"no CIFAR data folder: pass --data-dir DIR (data_dir= in Python) or set "
                                     f"{DATA_ENV}=DIR; the datasets are published at {CIFAR_URL}")
    data_dir = os.path.abspath(os.path.expanduser(os.fspath(data_dir)))
    if not os.path.isdir(data_dir):
        raise CifarNotFoundError(f"CIFAR data folder {data_dir} does not exist; the datasets are published at "
                                 f"{CIFAR_URL}")
    return data_dir


def _expected(name, fmt):
    folder, train, test, meta = LAYOUTS[name][fmt]
    return folder, train + [test] + ([meta] if meta else [])


def _locate(name, data_dir):
    """``(format, folder, file names)`` of the first complete copy of ``name`` in ``data_dir``."""
    _check_name(name)
    data_dir = resolve_data_dir(data_dir)
    wants = []
    for fmt in FORMATS:
        sub, files = _expected(name, fmt)
        folder = data_dir if os.path.basename(data_dir) == sub else os.path.join(data_dir, sub)
        missing = [f for f in files if not os.path.isfile(os.path.join(folder, f))]
        if not missing:
            return fmt, folder, files
        wants.append((fmt, folder, files, missing, os.path.isdir(folder)))
    title = LAYOUTS[name]["title"]
    present = [w for w in wants if w[4]]
    if present:
        fmt, folder, _, missing, _ = present[0]
        raise CifarNotFoundError(f"{title} in {folder} is incomplete ({fmt} version): missing {', '.join(missing)}; "
                                 f"unpack the archive from {CIFAR_URL} with tar xzf")
    expect = " or ".join(f"{folder}/{{{','.join(files)}}} ({fmt} version)" for fmt, folder, files, _, _ in wants)
    raise CifarNotFoundError(f"{title} not found: expected {expect}, as unpacked by tar xzf from {CIFAR_URL}")


# --- the python version: a restricted unpickler ------------------------------------------------


class _Refused(pickle.UnpicklingError):
    """A pickle that asks for something a CIFAR batch never holds."""


class _Uint8Token:
    """What ``numpy.dtype('u1', 0, 1)`` stands for in a batch; accepts only uint8's pickled state."""

    def __setstate__(self, state):
        if not (isinstance(state, tuple) and len(state) == 8 and state[0] == 3 and state[1] in (b"|", "|")
                and state[2:] == (None, None, None, -1, -1, 0)):
            raise _Refused(f"it holds a dtype with state {state!r}; CIFAR batches hold uint8 arrays only")


class _PendingArray:
    """What ``numpy.core.multiarray._reconstruct`` stands for: becomes a uint8 array once its
    state (version 1, a shape, the uint8 token, C order, the raw bytes) is checked.  numpy's
    own ``__setstate__`` never sees the file's data."""

    array = None

    def __setstate__(self, state):
        ok = isinstance(state, tuple) and len(state) == 5 and state[0] == 1
        shape = state[1] if ok else None
        ok = ok and isinstance(shape, tuple) and all(type(d) is int and d >= 0 for d in shape)
        ok = ok and isinstance(state[2], _Uint8Token) and state[3] is False and isinstance(state[4], bytes)
        if not ok or len(state[4]) != int(np.prod(shape, dtype=np.int64)):
            raise _Refused("it holds an array whose state is not that of a C-ordered uint8 array")
        self.array = np.frombuffer(state[4], dtype=np.uint8).reshape(shape)


def _reconstruct(subtype, shape, dtype):
    if subtype is not np.ndarray or dtype not in (b"b", "b"):
        raise _Refused(f"it reconstructs {subtype!r} from {dtype!r}; CIFAR batches hold numpy.ndarray only")
    return _PendingArray()


def _dtype(spec, align=0, copy=1):
    if spec not in (b"u1", "u1"):
        raise _Refused(f"it holds an array of dtype {spec!r}; CIFAR batches hold uint8 arrays only")
    return _Uint8Token()


def _arrays(obj):
    """``obj`` with its checked pending arrays replaced by numpy arrays (dict values, list items)."""
    if isinstance(obj, _PendingArray):
        if obj.array is None:
            raise _Refused("it holds an array without its data")
        return obj.array
    if isinstance(obj, dict):
        return {k: _arrays(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_arrays(v) for v in obj]
    if isinstance(obj, _Uint8Token):
        raise _Refused("it holds a dtype outside an array")
    return obj


#: The globals a CIFAR batch refers to (numpy's array pickling, Python 2 and 3 module names),
#: each replaced by a stand-in that checks what it is given.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _dtype,
}


class _BatchUnpickler(pickle.Unpickler):
    """An unpickler that admits only the globals of :data:`_ALLOWED`."""

    def find_class(self, module, name):
        found = _ALLOWED.get((module, name))
        if found is None:
            raise _Refused(f"it refers to {module}.{name}, which a CIFAR batch never holds")
        return found

    def persistent_load(self, pid):
        raise _Refused("it holds a persistent reference, which a CIFAR batch never holds")


def read_python_batch(path):
    """Read one pickled batch of the "python version" with a restricted unpickler.

    Only dicts, lists, bytes, numbers and uint8 numpy arrays can come out: a
    pickle that refers to any other global (``os.system``, ``builtins.eval``,
    ...) is refused before anything is called, and the arrays are built from
    their checked raw bytes (``numpy.frombuffer``), never by numpy's
    unpickling of the file's state.

    Parameters
    ----------
    path : str

    Returns
    -------
    dict
        With bytes keys, as ``pickle.load(f, encoding="bytes")`` returns it.

    Raises
    ------
    CifarError
        The file is not a pickle, is truncated, or refers to anything else.
    """
    with open(path, "rb") as fh:
        try:
            obj = _arrays(_BatchUnpickler(fh, encoding="bytes").load())
        except _Refused as exc:
            raise CifarError(f"refusing to load {path}: {exc}") from None
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, struct.error, IndexError, KeyError,
                AttributeError, OverflowError, MemoryError) as exc:
            raise CifarError(f"corrupt CIFAR file {path}: not a readable pickle "
                             f"({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, dict):
        raise CifarError(f"corrupt CIFAR file {path}: a {type(obj).__name__}, not a dict")
    return obj


def _python_split(path, label_key, classes):
    d = read_python_batch(path)
    data, labels = d.get(b"data"), d.get(label_key)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != IMAGE_BYTES:
        what = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise CifarError(f"corrupt CIFAR file {path}: b'data' must be a uint8 array (N, {IMAGE_BYTES}), got {what}")
    if not isinstance(labels, list) or len(labels) != len(data) or not all(type(v) is int for v in labels):
        raise CifarError(f"corrupt CIFAR file {path}: {label_key!r} must be a list of {len(data)} integers")
    y = np.asarray(labels, dtype=np.int64)
    if y.size and (y.min() < 0 or y.max() >= classes):
        raise CifarError(f"corrupt CIFAR file {path}: labels must be in [0, {classes - 1}], "
                         f"got {int(y.min())}..{int(y.max())}")
    return data.reshape(-1, 3, 32, 32), y


def _binary_split(path, classes, label_bytes):
    record = label_bytes + IMAGE_BYTES
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % record:
        raise CifarError(f"corrupt CIFAR file {path}: {raw.size} bytes is not a whole number of {record}-byte records")
    raw = raw.reshape(-1, record)
    y = raw[:, label_bytes - 1].astype(np.int64)  # CIFAR-100: (coarse, fine); the fine label
    if y.max() >= classes:
        raise CifarError(f"corrupt CIFAR file {path}: labels must be in [0, {classes - 1}], got {int(y.max())}")
    return np.ascontiguousarray(raw[:, label_bytes:]).reshape(-1, 3, 32, 32), y


def read_cifar(name, data_dir=None):
    """Read a CIFAR dataset from a local folder.

    Parameters
    ----------
    name : {"cifar10", "cifar100"}
    data_dir : str, optional
        The folder that holds the unpacked archive (``cifar-10-batches-py/``,
        ``cifar-10-batches-bin/``, ``cifar-100-python/`` or
        ``cifar-100-binary/``), or that folder itself; default the
        environment variable ``LNI_GEOMETRY_DATA``.

    Returns
    -------
    dict
        ``x_train``, ``x_test``: uint8 ``(N, 3, 32, 32)``; ``y_train``,
        ``y_test``: int64 (CIFAR-100: fine labels); ``classes``; ``format``
        (``"python"`` or ``"binary"``); ``folder``.

    Raises
    ------
    CifarNotFoundError
        No folder, or a missing or incomplete copy (one line: the files
        expected, where, and :data:`CIFAR_URL`).
    CifarError
        A corrupt or crafted file (one line naming it).
    """
    fmt, folder, _ = _locate(name, data_dir)
    lay = LAYOUTS[name]
    _, train, test, meta = lay[fmt]
    classes = lay["classes"]
    if fmt == "python":
        names = read_python_batch(os.path.join(folder, meta)).get(lay["meta_key"])
        if not isinstance(names, list) or len(names) != classes:
            raise CifarError(f"corrupt CIFAR file {os.path.join(folder, meta)}: {lay['meta_key']!r} must list "
                             f"{classes} class names")
        read = lambda f: _python_split(os.path.join(folder, f), lay["label_key"], classes)  # noqa: E731
    else:
        read = lambda f: _binary_split(os.path.join(folder, f), classes, 1 if classes == 10 else 2)  # noqa: E731
    parts = [read(f) for f in train]
    x_test, y_test = read(test)
    return {"x_train": np.concatenate([p[0] for p in parts]), "y_train": np.concatenate([p[1] for p in parts]),
            "x_test": x_test, "y_test": y_test, "classes": classes, "format": fmt, "folder": folder}


_IDENTITY = {}


def data_identity(name, data_dir=None):
    """The identity of the copy of ``name`` that :func:`read_cifar` would read.

    Computed once per process per copy (again if a file's size or
    modification time changes).

    Returns
    -------
    dict
        ``dataset``, ``format``, ``files`` (per file name: ``[size, sha256]``)
        and ``sha256`` (of all of it): part of a training run's cache key.
    """
    import json

    fmt, folder, files = _locate(name, data_dir)
    paths = [os.path.join(folder, f) for f in files]
    stamp = tuple((p, os.stat(p).st_size, os.stat(p).st_mtime_ns) for p in paths)
    if stamp not in _IDENTITY:
        entries = {}
        for f, p in zip(files, paths):
            h = hashlib.sha256()
            with open(p, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 22), b""):
                    h.update(block)
            entries[f] = [os.path.getsize(p), h.hexdigest()]
        ident = {"dataset": name, "format": fmt, "files": entries}
        ident["sha256"] = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()
        _IDENTITY[stamp] = ident
    return _IDENTITY[stamp]


# --- writing copies ----------------------------------------------------------------------------


def _py2_pickle(obj):
    """``obj`` pickled as Python 2's cPickle writes it with protocol 2 (bytes as ``str``
    opcodes, numpy arrays through ``numpy.core.multiarray._reconstruct``): the format of
    the official python batches.  Dicts, lists, tuples, ints, bytes, None, False and
    uint8 arrays only."""
    out = [pickle.PROTO + b"\x02"]

    def items(seq):
        for v in seq:
            put(v)

    def put(o):
        if isinstance(o, dict):
            out.append(pickle.EMPTY_DICT)
            if o:
                out.append(pickle.MARK)
                for k, v in o.items():
                    put(k)
                    put(v)
                out.append(pickle.SETITEMS)
        elif isinstance(o, list):
            out.append(pickle.EMPTY_LIST)
            if o:
                out.append(pickle.MARK)
                items(o)
                out.append(pickle.APPENDS)
        elif isinstance(o, tuple):
            out.append(pickle.MARK)
            items(o)
            out.append(pickle.TUPLE)
        elif o is None:
            out.append(pickle.NONE)
        elif o is False:
            out.append(pickle.NEWFALSE)
        elif isinstance(o, (int, np.integer)):
            out.append(pickle.BININT + struct.pack("<i", int(o)))
        elif isinstance(o, bytes):
            out.append(pickle.SHORT_BINSTRING + bytes([len(o)]) + o if len(o) < 256
                       else pickle.BINSTRING + struct.pack("<i", len(o)) + o)
        elif isinstance(o, np.ndarray) and o.dtype == np.uint8:
            out.append(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            out.append(pickle.MARK + pickle.GLOBAL + b"numpy\nndarray\n")
            items(((0,), b"b"))
            out.append(pickle.TUPLE + pickle.REDUCE + pickle.MARK)
            items((1, tuple(o.shape)))
            out.append(pickle.GLOBAL + b"numpy\ndtype\n")
            items(((b"u1", 0, 1),))
            out.append(pickle.REDUCE)
            items(((3, b"|", None, None, None, -1, -1, 0),))
            out.append(pickle.BUILD)
            items((False, np.ascontiguousarray(o).tobytes()))
            out.append(pickle.TUPLE + pickle.BUILD)
        else:
            raise TypeError(f"cannot write {type(o).__name__} into a CIFAR batch")

    put(obj)
    out.append(pickle.STOP)
    return b"".join(out)


def _write_atomic(path, data):
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def write_cifar(folder, name, x_train, y_train, x_test, y_test, *, formats=FORMATS):
    """Write arrays as a copy of CIFAR in its official layouts (test data, subsets).

    Parameters
    ----------
    folder : str
        Created if needed; the copy goes into its subfolders
        (``cifar-100-python/``, ``cifar-100-binary/``, ...).
    name : {"cifar10", "cifar100"}
    x_train, x_test : numpy.ndarray
        uint8 ``(N, 3, 32, 32)``.
    y_train, y_test : numpy.ndarray
        Integer labels in ``[0, classes)`` (CIFAR-100: the fine labels; the
        coarse label written beside them is ``fine // 5``).
    formats : sequence of {"python", "binary"}

    Returns
    -------
    list of str
        The folders written.

    Notes
    -----
    CIFAR-10's training set is cut into five batches (``numpy.array_split``).
    The python batches are pickled as Python 2 wrote the official ones
    (protocol 2, ``str`` opcodes for bytes).
    """
    _check_name(name)
    lay = LAYOUTS[name]
    classes = lay["classes"]
    for arr, what in ((x_train, "x_train"), (x_test, "x_test")):
        arr = np.asarray(arr)
        if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[1:] != (3, 32, 32):
            raise ValueError(f"{what} must be uint8 of shape (N, 3, 32, 32), got {arr.dtype} {arr.shape}")
    for arr, x, what in ((y_train, x_train, "y_train"), (y_test, x_test, "y_test")):
        arr = np.asarray(arr)
        if arr.shape != (len(x),) or (arr.size and (arr.min() < 0 or arr.max() >= classes)):
            raise ValueError(f"{what} must hold {len(x)} labels in [0, {classes - 1}]")
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ValueError(f"formats must be among {FORMATS}, got {bad[0]!r}")
    parts = len(lay["python"][1])  # CIFAR-10: five training batches; CIFAR-100: one
    splits = list(zip(np.array_split(np.asarray(x_train), parts),
                      np.array_split(np.asarray(y_train, dtype=np.int64), parts)))
    written = []
    for fmt in formats:
        sub, train_files, test_file, meta = lay[fmt]
        out = os.path.join(os.fspath(folder), sub)
        os.makedirs(out, exist_ok=True)
        batches = [(tf, x, y) for tf, (x, y) in zip(train_files, splits)]
        batches.append((test_file, np.asarray(x_test), np.asarray(y_test, dtype=np.int64)))
        for fname, x, y in batches:
            path = os.path.join(out, fname)
            if fmt == "binary":
                labels = y[:, None] if classes == 10 else np.stack([y // 5, y], axis=1)
                _write_atomic(path, np.concatenate([labels.astype(np.uint8), x.reshape(len(x), -1)], axis=1).tobytes())
                continue
            d = {b"batch_label": fname.encode(), lay["label_key"]: [int(v) for v in y],
                 b"data": np.ascontiguousarray(x.reshape(len(x), -1)),
                 b"filenames": [f"image_{i:05d}.png".encode() for i in range(len(x))]}
            if classes == 100:
                d[b"coarse_labels"] = [int(v) // 5 for v in y]
            _write_atomic(path, _py2_pickle(d))
        if meta is not None:
            names = [f"class_{i}".encode() for i in range(classes)]
            m = ({b"num_cases_per_batch": len(splits[0][0]), b"label_names": names, b"num_vis": IMAGE_BYTES}
                 if classes == 10 else {b"fine_label_names": names,
                                        b"coarse_label_names": [f"superclass_{i}".encode() for i in range(20)]})
            _write_atomic(os.path.join(out, meta), _py2_pickle(m))
        written.append(out)
    return written


def synthetic_cifar(n_train, n_test, classes, seed=0):
    """Random CIFAR-shaped arrays: uint8 images ``(N, 3, 32, 32)`` and labels.

    Each class has its own mean colour, so that a network can learn something;
    for tests and timings, not for science.

    Returns
    -------
    tuple
        ``(x_train, y_train, x_test, y_test)``.
    """
    rng = np.random.default_rng(seed)
    colours = rng.integers(40, 216, size=(classes, 3, 1, 1))

    def draw(n):
        y = rng.integers(0, classes, size=n)
        x = np.clip(colours[y] + rng.normal(0, 40, size=(n, 3, 32, 32)), 0, 255).astype(np.uint8)
        return x, y.astype(np.int64)

    x_tr, y_tr = draw(n_train)
    x_te, y_te = draw(n_test)
    return x_tr, y_tr, x_te, y_te


# --- augmentation ------------------------------------------------------------------------------


def augmentation_draws(seed, epoch, n, pad=4):
    """The random crops and flips of one epoch of a run: ``(shifts, flips)``.

    ``shifts``: int64 ``(n, 2)`` in ``[0, 2 pad]`` (row and column offsets of
    the crop in the padded image), ``flips``: bool ``(n,)``, for the images at
    positions ``0..n-1`` of the epoch's order.  Drawn on the CPU from a
    ``torch.Generator`` seeded by ``(seed, epoch)`` (through
    ``numpy.random.SeedSequence``), so that they are the same on every device
    and a resumed run draws them again identically.
    """
    import torch

    word = int(np.random.SeedSequence([int(seed), 2, int(epoch)]).generate_state(1, np.uint64)[0] >> 1)
    gen = torch.Generator().manual_seed(word)
    shifts = torch.randint(0, 2 * pad + 1, (n, 2), generator=gen)
    flips = torch.randint(0, 2, (n,), generator=gen).bool()
    return shifts, flips


def augment_batch(x, shifts, flips, pad=4):
    """Random crop with zero padding and horizontal flip of a batch, on its device.

    Parameters
    ----------
    x : torch.Tensor
        ``(B, C, H, W)``, already normalised (so the zero padding is the mean
        colour).
    shifts : torch.Tensor
        int64 ``(B, 2)`` in ``[0, 2 pad]``: where the ``H x W`` crop starts in
        the image padded by ``pad`` on each side.
    flips : torch.Tensor
        bool ``(B,)``: mirror the crop left to right.
    pad : int

    Returns
    -------
    torch.Tensor
        ``(B, C, H, W)``: ``out[b, c, i, j] = padded[b, c, s0 + i, s1 + j']``,
        ``j' = W - 1 - j`` where flipped, else ``j``.
    """
    import torch
    import torch.nn.functional as F

    b, c, h, w = x.shape
    dev = x.device
    shifts, flips = shifts.to(dev), flips.to(dev)
    padded = F.pad(x, (pad, pad, pad, pad))
    ar_h, ar_w = torch.arange(h, device=dev), torch.arange(w, device=dev)
    rows = shifts[:, :1] + ar_h
    cols = torch.where(flips[:, None], w - 1 - ar_w, ar_w) + shifts[:, 1:]
    return padded[torch.arange(b, device=dev)[:, None, None, None], torch.arange(c, device=dev)[None, :, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]
