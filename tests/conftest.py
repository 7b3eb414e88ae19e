"""Shared test configuration: hypothesis profiles and a run of the sampler on two numba threads.

Hypothesis profiles
-------------------
``ci`` (the default): 25 derandomised examples per property (``LNI_HYPOTHESIS_EXAMPLES``
changes the number), so that CI is deterministic.  ``thorough``: 1000 random examples
per property (``LNI_HYPOTHESIS_EXAMPLES`` again), for a search before a release::

    python -m pytest --hypothesis-profile thorough -p no:nbmake -o addopts="" tests/

Tests that set their own ``max_examples`` take the larger of theirs and the profile's.
"""

import json
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=int(os.environ.get("LNI_HYPOTHESIS_EXAMPLES", "25")),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough",
    max_examples=int(os.environ.get("LNI_HYPOTHESIS_EXAMPLES", "1000")),
    deadline=None,
    derandomize=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# the default; hypothesis's pytest plugin loads the profile named by
# --hypothesis-profile after this file is read, so the option wins
settings.load_profile("ci")


# --- the sampler on one and on two numba threads ------------------------------------

#: (dim, samples, model spec, seed, start) of the runs compared across thread counts:
#: several kernel chunks per sample (chunks spread over threads) and many samples
#: (one thread per sample), for the Gaussian and the heavy-tailed models.
THREAD_CASES = [
    (3 * 65536 + 5, 3, "gaussian", 5, 3),
    (1001, 40, "gaussian", 5, 3),
    (140_000, 3, "stable:1.5", 4, 0),
    (140_000, 3, "stable:0.7:2.0", 4, 0),
    (140_000, 3, "t:2.5", 4, 0),
    (70_001, 11, "t:2.5", 4, 0),
]

_THREADS_SCRIPT = r"""
import json, sys
import numba
import lni_geometry as lg

assert numba.config.NUMBA_NUM_THREADS == 2, numba.config.NUMBA_NUM_THREADS
out = []
for dim, samples, spec, seed, start in json.loads(sys.argv[1]):
    runs = []
    for threads in (1, 2):
        numba.set_num_threads(threads)
        assert numba.get_num_threads() == threads
        s = lg.sample_angles(dim, samples, spec, seed=seed, start=start, backend="cpu")
        runs.append([float(x).hex() for x in s.sums.ravel()])
    out.append(runs)
print(json.dumps(out))
"""


@pytest.fixture(scope="session")
def two_thread_runs():
    """``{case: (sums on 1 thread, sums on 2 threads)}`` for :data:`THREAD_CASES`, as
    float hex strings, from a subprocess started with ``NUMBA_NUM_THREADS=2`` (so the
    comparison is not vacuous on a machine where numba would start one thread)."""
    env = {**os.environ, "NUMBA_NUM_THREADS": "2"}
    proc = subprocess.run(
        [sys.executable, "-c", _THREADS_SCRIPT, json.dumps(THREAD_CASES)],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    runs = json.loads(proc.stdout.strip().splitlines()[-1])
    return {tuple(case): (one, two) for case, (one, two) in zip(THREAD_CASES, runs)}
