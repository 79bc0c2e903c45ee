r"""An on-disk cache of the book's results, on :class:`joblib.Memory`.

Results, never models: per-point metric tables and score matrices, stored by
:class:`joblib.Memory` (pickled, so every array comes back bit for bit with its dtype) and keyed
by *everything* that determines them — the events (their content, not their name: a
:func:`fingerprint`), the parameters, the device type, and the :func:`code_version` of the
library code and of NumPy and PyTorch. Change any of those and the result is recomputed; run a
chapter alone (e.g. in Colab) and it simply computes what it needs. joblib writes each result
atomically and computes again when a stored file cannot be read.

The directory is the environment variable ``INTEREST_LIB_CACHE``; by default
``interest_lib_cache`` under :func:`tempfile.gettempdir`. Set the variable to ``off`` (or ``0``,
``none``, ``false``) to disable the cache. :func:`stored_results` lists the stored results of
one kind.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import stat
import tempfile
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from joblib import Memory
from numpy.typing import ArrayLike

CACHE_ENV: str = "INTEREST_LIB_CACHE"

_OFF = {"off", "0", "none", "false", "no", "disable", "disabled"}
# --------------------------------------------------------------------------------------------
# the cache
# --------------------------------------------------------------------------------------------


def cache_dir() -> Path | None:
    """The cache directory (created on first use), or ``None`` when the cache is disabled.

    Stored results are pickles, and reading a pickle runs code: a directory that belongs to
    another user, or that anybody may write to, is not used (with a warning) and the cache is
    disabled instead.
    """
    value = os.environ.get(CACHE_ENV, "").strip()
    if value.lower() in _OFF:
        return None
    path = Path(value).expanduser() if value else Path(tempfile.gettempdir()) / "interest_lib_cache"
    path.mkdir(parents=True, exist_ok=True)
    if hasattr(os, "getuid"):  # POSIX: the directory must be the user's own
        info = path.stat()
        if info.st_uid != os.getuid() or info.st_mode & stat.S_IWOTH:
            warnings.warn(f"result cache {path} belongs to another user or is writable by "
                          f"anybody: not used (set {CACHE_ENV} to a directory of your own)",
                          stacklevel=2)
            return None
    return path


_module_hashes: dict[str, str] = {}


def code_version(modules: Sequence[str] = (), functions: Sequence[Callable[..., Any]] = ()) -> str:
    """Hash of the source code a result depends on, and of the NumPy and PyTorch versions.

    Parameters
    ----------
    modules
        Names of ``interest_lib`` submodules (e.g. ``"baselines"``) whose whole source counts.
    functions
        Functions whose own source counts (e.g. the experiment function itself), so that editing
        an unrelated function of the same module does not invalidate a stored result.
    """
    import inspect

    digest = hashlib.sha256(f"numpy {np.__version__}".encode())
    try:
        import torch

        digest.update(f"torch {torch.__version__}".encode())
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    for name in sorted(set(modules)):
        if name not in _module_hashes:
            from interest_lib import MODULES

            spec = importlib.util.find_spec(f"interest_lib.{MODULES.get(name, name)}")
            if spec is None or not spec.origin:
                raise ValueError(f"interest_lib has no module {name!r}")
            _module_hashes[name] = hashlib.sha256(Path(spec.origin).read_bytes()).hexdigest()
        digest.update(f"{name}:{_module_hashes[name]}".encode())
    for function in functions:
        digest.update(inspect.getsource(function).encode())
    return digest.hexdigest()[:16]


def fingerprint(*arrays: ArrayLike | pd.DataFrame) -> str:
    """A short hash of the content of arrays and event tables (column names, dtypes and values)."""
    digest = hashlib.sha256()
    for item in arrays:
        if isinstance(item, pd.DataFrame):
            for name in item.columns:
                column = item[name]
                values = column.cat.codes.to_numpy() if isinstance(
                    column.dtype, pd.CategoricalDtype
                ) else column.to_numpy()
                digest.update(str(name).encode())
                if isinstance(column.dtype, pd.CategoricalDtype):
                    digest.update(repr(list(column.cat.categories)).encode())
                digest.update(np.ascontiguousarray(values).view(np.uint8))
        else:
            array = np.ascontiguousarray(np.asarray(item))
            digest.update(f"{array.dtype}{array.shape}".encode())
            digest.update(array.view(np.uint8) if array.size else b"")
    return digest.hexdigest()[:16]


def _result(
    name: str, params: Mapping[str, Any], code: str, compute: Callable[[], Mapping[str, Any]]
) -> dict[str, np.ndarray]:
    """What :class:`joblib.Memory` stores: ``compute()``, keyed by ``name``, ``params``, ``code``."""
    return {k: np.asarray(v) for k, v in compute().items()}


def _memory(directory: Path) -> Any:
    """:func:`_result` memoized by :class:`joblib.Memory` in ``directory``."""
    return Memory(directory, verbose=0).cache(_result, ignore=["compute"])


def _result_folder(memorized: Any) -> Path:
    """The folder where joblib keeps the results of :func:`_result`, one sub-folder per call."""
    return Path(memorized.store_backend.location, *memorized.func_id.split("/"))


def cached(
    name: str,
    params: Mapping[str, Any],
    compute: Callable[[], Mapping[str, np.ndarray]],
    *,
    code: str = "",
    refresh: bool = False,
) -> dict[str, np.ndarray]:
    """Load a result from the cache, or compute it and store it.

    Parameters
    ----------
    name
        What the result is (:func:`stored_results` finds it by this name).
    params
        Everything the result depends on (JSON-serialisable after ``str``); include a
        :func:`fingerprint` of the data.
    compute
        Returns a mapping of names to NumPy arrays.
    code
        The :func:`code_version` of the code that computes the result.
    refresh
        Recompute and overwrite even when a stored result exists.

    Returns
    -------
    dict
        Name → array, as ``compute`` returned it (same dtypes, same bits).
    """
    directory = cache_dir()
    if directory is None:
        return _result(name, params, code, compute)
    # the key is the parameters as JSON would write them (``str`` of anything else)
    key = json.loads(json.dumps(dict(params), sort_keys=True, default=str))
    memorized = _memory(directory)
    if not refresh:
        return memorized(name, key, code, compute)
    out = memorized.call(name, key, code, compute)
    return out[0] if isinstance(out, tuple) else out  # joblib >= 1.4 adds the call's metadata


def stored_results(name: str) -> list[Path]:
    """The files of the stored results called ``name`` (one per parameter set), sorted."""
    directory = cache_dir()
    if directory is None:
        return []
    found = []
    for metadata in _result_folder(_memory(directory)).glob("*/metadata.json"):
        try:
            arguments = json.loads(metadata.read_text())["input_args"]
        except (OSError, ValueError, KeyError):
            continue
        output = metadata.with_name("output.pkl")
        if arguments.get("name") == repr(name) and output.exists():
            found.append(output)
    return sorted(found)


def clear_cache() -> int:
    """Delete every stored result; returns how many results were removed.

    Only the results :func:`cached` stored are removed, never other files of the directory.
    """
    directory = cache_dir()
    if directory is None:
        return 0
    memorized = _memory(directory)
    removed = sum(1 for _ in _result_folder(memorized).glob("*/output.pkl"))
    memorized.clear(warn=False)
    return removed
