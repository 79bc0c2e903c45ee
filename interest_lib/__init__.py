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
- :mod:`interest_lib.features` — vocabularies, user × category matrices, TF-IDF, window targets
- :mod:`interest_lib.metrics` — HR@K, NDCG@K, MRR, F1, AUC over the full ranking; bootstrap CIs
- :mod:`interest_lib.train` — device choice and one seeded training loop (imports torch)
- :mod:`interest_lib.models` — the interest MLP and the LSTM/GRU sequence models (imports torch)
- :mod:`interest_lib.sequences` — the next-category task and padded user sequences
- :mod:`interest_lib.baselines` — popularity, user frequency, repeat-last, Markov chain, the oracle
- :mod:`interest_lib.transfer` — sparse cosine kNN, centroid transfer, fine-tuning across platforms
- :mod:`interest_lib.plots` — figures shared by the chapters
- :mod:`interest_lib.static_interest`, :mod:`interest_lib.cluster` — chapters 3 and 4's interest
  examples and KMeans segments
- :mod:`interest_lib.experiments` — the book's protocol in one place, with a cache of trained models
  (chapters 6 and 7 share them)
- :mod:`interest_lib.recommend` — from category scores to top-N item lists
- :mod:`interest_lib.pipeline` — load → clean → split → baselines → LSTM on a real-format file

Modules that need PyTorch are imported on first use (``il.train``, ``il.models``), so loading and
cleaning data does not pay for importing torch.
"""

import importlib

from . import describe, features, metrics, plots, schema
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

_LAZY_SUBMODULES = ("train", "models", "transfer", "baselines", "sequences", "cluster",
                    "static_interest", "experiments", "recommend", "pipeline")


def __getattr__(name: str):
    if name in _LAZY_SUBMODULES:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "describe",
    "features",
    "metrics",
    "plots",
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
    "SimulationTruth",
    "compare_with_taobao",
    "log_statistics",
    "oracle_next_category",
    "session_ids",
    "simulate",
]
