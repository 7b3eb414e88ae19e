"""Small offline training experiments: the seed paper's Figures 2 to 6 in miniature.

The paper (Elistratov, Podivilov, Iuzhakov, Vetrov, "Lion's sign noise can make
training more stable") trains ResNets on CIFAR; here the same questions are
asked of small networks on scikit-learn's bundled digits, on 2 CPU cores, and,
as the preset ``scale="paper"``, of the paper's own ResNet-9 and ResNet-18 on
CIFAR read from a local folder (:mod:`.paper`, :mod:`.cifar`; nothing is
downloaded):

- :class:`RunConfig` (:mod:`.config`: a run's configuration and cache key),
  :func:`train`, :class:`RunResult` (:mod:`.engine`): one run as a pure
  function of its configuration, with the optimizer's telemetry per step;
- :func:`run_many` (:mod:`.runner`): many runs through the on-disk cache
  (:mod:`.cache`), in parallel worker processes;
- :mod:`.figures`: the runs, the data and the drawing of each figure;
- :mod:`.networks`, :mod:`.tasks`: the networks and the datasets.

Importing this package does not import torch; training does.
"""

from .cache import DEFAULT_CACHE, load_result, result_path
from .config import ENGINE_VERSION, EVAL_FIELDS, STEP_FIELDS, RunConfig
from .engine import RunResult, StopTraining, train
from .runner import run_many

__all__ = [
    "DEFAULT_CACHE",
    "ENGINE_VERSION",
    "EVAL_FIELDS",
    "STEP_FIELDS",
    "RunConfig",
    "RunResult",
    "StopTraining",
    "load_result",
    "result_path",
    "run_many",
    "train",
]
