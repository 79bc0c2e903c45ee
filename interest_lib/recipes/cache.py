r"""An on-disk cache of the book's results.

Results, never models: per-point metric tables and score matrices, as ``.npz`` files keyed by
a hash of *everything* that determines them — the events (their content, not their name), the
parameters, the device type, the library's source code and the versions of NumPy and PyTorch.
Change any of those and the result is recomputed; run a chapter alone (e.g. in Colab) and it
simply computes what it needs.

The directory is the environment variable ``INTEREST_LIB_CACHE``; by default
``interest_lib_cache`` under :func:`tempfile.gettempdir`. Set the variable to ``off`` (or ``0``,
``none``, ``false``) to disable the cache.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

CACHE_ENV: str = "INTEREST_LIB_CACHE"

_OFF = {"off", "0", "none", "false", "no", "disable", "disabled"}
# --------------------------------------------------------------------------------------------
# the cache
# --------------------------------------------------------------------------------------------


def cache_dir() -> Path | None:
    """The cache directory (created on first use), or ``None`` when the cache is disabled."""
    value = os.environ.get(CACHE_ENV, "").strip()
    if value.lower() in _OFF:
        return None
    path = Path(value).expanduser() if value else Path(tempfile.gettempdir()) / "interest_lib_cache"
    path.mkdir(parents=True, exist_ok=True)
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


def cache_key(name: str, params: Mapping[str, Any], code: str = "") -> str:
    """The file stem of a result: ``name`` plus a hash of ``params`` and ``code``."""
    text = json.dumps({"params": dict(params), "code": code}, sort_keys=True, default=str)
    return f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:20]}"


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
        What the result is (part of the file name).
    params
        Everything the result depends on (JSON-serialisable after ``str``); include a
        :func:`fingerprint` of the data.
    compute
        Returns a mapping of names to NumPy arrays (no object arrays).
    code
        The :func:`code_version` of the code that computes the result.
    refresh
        Recompute and overwrite even when a stored result exists.

    Returns
    -------
    dict
        Name → array, as ``compute`` returned it.
    """
    directory = cache_dir()
    if directory is None:
        return {k: np.asarray(v) for k, v in compute().items()}
    path = directory / f"{cache_key(name, params, code)}.npz"
    if path.exists() and not refresh:
        try:
            with np.load(path, allow_pickle=False) as stored:
                return {k: stored[k] for k in stored.files}
        except (OSError, ValueError, EOFError):
            pass  # a damaged file: compute again
    result = {k: np.asarray(v) for k, v in compute().items()}
    # write to a private file, then rename: readers never see a half-written result
    handle, temporary = tempfile.mkstemp(dir=directory, suffix=".npz.part")
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez(stream, **result)
        os.replace(temporary, path)
    except OSError:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return result


def clear_cache() -> int:
    """Delete every stored result; returns how many files were removed."""
    directory = cache_dir()
    if directory is None:
        return 0
    removed = 0
    for path in directory.glob("*.npz"):
        path.unlink(missing_ok=True)
        removed += 1
    return removed


