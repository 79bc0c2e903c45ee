"""interest_lib: the helper package of the Interest Migration handbook.

The package is laid out by stage; imports only go downwards (``data`` ← ``evaluation`` ←
``models`` ← ``recipes``). See CONTRIBUTING.md for the architecture.

- :mod:`interest_lib.data` — the event schema, the simulator and its oracle, loaders of the public
  logs, dirt, cleaning, the time split, features, and the prediction tasks and sequences;
- :mod:`interest_lib.evaluation` — ranking metrics over the full category set, bootstrap
  intervals, one leaderboard;
- :mod:`interest_lib.models` — baselines, KMeans segments, transfer, the interest MLP, recurrent
  models, item lists and the training loop (the last four import PyTorch);
- :mod:`interest_lib.recipes` — the book's recipes: the result cache, the protocol set-up, one
  module per chapter that needs one, plots, the real-data pipeline and classroom tools.

Every module is also reachable by its own name, ``il.metrics``, ``il.baselines``,
``il.trajectory`` …, imported on first use, so loading and cleaning data does not pay for
importing torch.
"""

import importlib

from interest_lib.data import describe, features, schema
from interest_lib.data.cleaning import DROP_REASONS, CleaningReport, clean, grade_cleaning
from interest_lib.data.describe import (
    compare_with_taobao,
    log_statistics,
    predictability_statistics,
    session_ids,
)
from interest_lib.data.loaders import (
    DataFileNotFoundError,
    DataFormatError,
    iter_taobao,
    load_rees46,
    load_retailrocket,
    load_taobao,
    write_taobao,
)
from interest_lib.data.noise import NOISE_KINDS, NoisyEvents, add_noise
from interest_lib.data.oracle import oracle_next_category
from interest_lib.data.schema import (
    BEHAVIOR_TYPES,
    EVENT_COLUMNS,
    PLATFORMS,
    TAOBAO_END,
    TAOBAO_START,
)
from interest_lib.data.simulation import Simulation, SimulationParams, SimulationTruth, simulate
from interest_lib.data.split import (
    FutureLeakError,
    TimeSplit,
    assert_fitted_on_train,
    split_by_time,
)
from interest_lib.evaluation import metrics

__version__ = "0.1.0"

MODULES: dict[str, str] = {
    # data
    "schema": "data.schema",
    "simulation": "data.simulation",
    "simulation_stages": "data.simulation_stages",
    "oracle": "data.oracle",
    "noise": "data.noise",
    "loaders": "data.loaders",
    "csv_files": "data.csv_files",
    "csv_reading": "data.csv_reading",
    "cleaning": "data.cleaning",
    "split": "data.split",
    "describe": "data.describe",
    "features": "data.features",
    "windows": "data.windows",
    "tasks": "data.tasks",
    "sequences": "data.sequences",
    # evaluation
    "metrics": "evaluation.metrics",
    "leaderboard": "evaluation.leaderboard",
    # models
    "baselines": "models.baselines",
    "session_baselines": "models.session_baselines",
    "clusters": "models.clusters",
    "transfer": "models.transfer",
    "recommend": "models.recommend",
    "training": "models.training",
    "interest_mlp": "models.interest_mlp",
    "recurrent": "models.recurrent",
    "lstm_cell": "models.lstm_cell",
    "trajectory": "models.trajectory",
    # recipes
    "cache": "recipes.cache",
    "benchmark_files": "recipes.benchmark_files",
    "protocol": "recipes.protocol",
    "next_window": "recipes.next_window",
    "audit": "recipes.audit",
    "segments": "recipes.segments",
    "errata": "recipes.errata",
    "cold_start": "recipes.cold_start",
    "cold_start_mlp": "recipes.cold_start_mlp",
    "cold_start_choice": "recipes.cold_start_choice",
    "trajectories": "recipes.trajectories",
    "memory_sweep": "recipes.memory_sweep",
    "mistakes": "recipes.mistakes",
    "comparison": "recipes.comparison",
    "plots": "recipes.plots",
    "real_data": "recipes.real_data",
    "real_data_rules": "recipes.real_data_rules",
    "classroom": "recipes.classroom",
}
"""Short name → module path below ``interest_lib``: ``il.metrics`` is
``interest_lib.evaluation.metrics``."""


def __getattr__(name: str):
    if name in MODULES:
        module = importlib.import_module(f"interest_lib.{MODULES[name]}")
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "describe",
    "features",
    "metrics",
    "schema",
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
    "SimulationParams",
    "SimulationTruth",
    "compare_with_taobao",
    "log_statistics",
    "oracle_next_category",
    "predictability_statistics",
    "session_ids",
    "simulate",
]
