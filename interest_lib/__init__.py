"""interest_lib: the helper package of the Interest Migration handbook.

The chapters import from here; every function is documented and tested. Submodules:

- :mod:`interest_lib.schema` — the canonical event table
- :mod:`interest_lib.simulation` — the simulator and its ground truth
- :mod:`interest_lib.oracle` — the Bayes-optimal next-category predictor for simulated data
- :mod:`interest_lib.describe` — log statistics and the real Taobao reference figures
"""

from .describe import compare_with_taobao, log_statistics, session_ids
from .oracle import oracle_next_category
from .schema import BEHAVIOR_TYPES, EVENT_COLUMNS, PLATFORMS, TAOBAO_END, TAOBAO_START
from .simulation import Simulation, SimulationTruth, simulate

__version__ = "0.1.0"

__all__ = [
    "BEHAVIOR_TYPES",
    "EVENT_COLUMNS",
    "PLATFORMS",
    "TAOBAO_END",
    "TAOBAO_START",
    "Simulation",
    "SimulationTruth",
    "compare_with_taobao",
    "log_statistics",
    "oracle_next_category",
    "session_ids",
    "simulate",
]
