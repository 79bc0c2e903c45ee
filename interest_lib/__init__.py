"""interest_lib: the helper package of the Interest Migration handbook.

The chapters import from here; every function is documented and tested. Submodules:

- :mod:`interest_lib.schema` — the canonical event table
- :mod:`interest_lib.simulation` — the simulator and its ground truth
- :mod:`interest_lib.oracle` — the Bayes-optimal next-category predictor for simulated data
- :mod:`interest_lib.describe` — log statistics and the real Taobao reference figures
- :mod:`interest_lib.datasets` — loaders of the public logs (Taobao, RetailRocket, REES46)
- :mod:`interest_lib.noise` — dirt for the cleaning chapter, with a record of what was corrupted
- :mod:`interest_lib.cleaning` — the cleaner and its row account
- :mod:`interest_lib.split` — the global time split
"""

from .cleaning import DROP_REASONS, CleaningReport, clean, grade_cleaning
from .datasets import (
    DataFileNotFoundError,
    DataFormatError,
    iter_taobao,
    load_rees46,
    load_retailrocket,
    load_taobao,
    write_taobao,
)
from .describe import compare_with_taobao, log_statistics, session_ids
from .noise import NOISE_KINDS, NoisyEvents, add_noise
from .oracle import oracle_next_category
from .schema import BEHAVIOR_TYPES, EVENT_COLUMNS, PLATFORMS, TAOBAO_END, TAOBAO_START
from .simulation import Simulation, SimulationTruth, simulate
from .split import FutureLeakError, TimeSplit, assert_fitted_on_train, split_by_time

__version__ = "0.1.0"

__all__ = [
    "DROP_REASONS",
    "NOISE_KINDS",
    "CleaningReport",
    "DataFileNotFoundError",
    "DataFormatError",
    "FutureLeakError",
    "NoisyEvents",
    "TimeSplit",
    "add_noise",
    "assert_fitted_on_train",
    "clean",
    "grade_cleaning",
    "iter_taobao",
    "load_rees46",
    "load_retailrocket",
    "load_taobao",
    "split_by_time",
    "write_taobao",
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
