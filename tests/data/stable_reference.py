"""Independent reference for tests/test_theory.py: bisector angles of alpha-stable vectors.

Draws ``SAMPLES`` vectors of ``DIM`` iid symmetric alpha-stable coordinates with
numpy's PCG64 generator and the Chambers-Mallows-Stuck formula written here (no
lni_geometry code: not its Philox streams, not its transform), and stores the
bisector angles ``arccos(||x||_1 / (sqrt(n) ||x||_2))`` in ``stable_angles.npz``
beside this file.  Rerun (about 2 minutes on one core)::

    python tests/data/stable_reference.py
"""

from pathlib import Path

import numpy as np

ALPHA = 1.5
DIM = 10**5
SAMPLES = 10_000
SEED = 20261122
OUT = Path(__file__).with_name("stable_angles.npz")


def cms(gen, alpha, size):
    """Symmetric alpha-stable draws, characteristic function exp(-|t|**alpha) (alpha != 1)."""
    v = gen.uniform(-np.pi / 2, np.pi / 2, size)
    w = gen.standard_exponential(size)
    return np.sin(alpha * v) / np.cos(v) ** (1 / alpha) * (np.cos((1 - alpha) * v) / w) ** ((1 - alpha) / alpha)


def main():
    gen = np.random.default_rng(SEED)
    angles = np.empty(SAMPLES)
    batch = 20
    for i in range(0, SAMPLES, batch):
        x = cms(gen, ALPHA, (batch, DIM))
        ax = np.abs(x)
        angles[i:i + batch] = np.arccos(ax.sum(1) / np.sqrt(DIM * (x * x).sum(1)))
    np.savez(OUT, angles=angles, alpha=ALPHA, dim=DIM, seed=SEED)


if __name__ == "__main__":
    main()
