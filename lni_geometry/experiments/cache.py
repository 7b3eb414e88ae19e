"""The on-disk cache of training runs, keyed by configuration.

A finished run is one ``.npz`` file in the cache directory, named by a readable
label and the SHA-256 of :meth:`RunConfig.key` (the configuration, the package
version, :data:`~lni_geometry.experiments.config.ENGINE_VERSION`, the random-stream
and torch versions and the code fingerprint), written
atomically (a temporary file, then ``os.replace``): a reader never sees half a
file, and two processes that finish the same run leave one valid file.  An
unfinished run leaves a checkpoint beside it (``.ckpt.pt``) that the next call
continues.  Figures share runs through it: Figure 3 and Figure 5 reuse Figure
2's Lion runs.
"""

from __future__ import annotations

import os

__all__ = ["DEFAULT_CACHE", "result_path", "load_result"]

#: The cache directory of the ``figureN`` commands unless ``--cache`` says otherwise.
DEFAULT_CACHE = ".lni-cache"


def result_path(cache, config):
    """The file of a finished run of ``config`` in the directory ``cache``."""
    return os.path.join(os.fspath(cache), f"{config.label()}_{config.digest()}.npz")


def load_result(path, config):
    """The finished run stored at ``path``, or None when absent, unreadable or another run.

    The stored key must equal ``config.key()`` (configuration, versions, code
    fingerprint): a file that does not match is never served.
    """
    from .engine import RunResult

    if not os.path.exists(path):
        return None
    try:
        result = RunResult.load(path)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if result.meta.get("key") != config.key():
        return None
    result.meta["cached"] = True
    return result
