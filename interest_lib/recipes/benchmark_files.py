"""The JSON files the scripts of ``benchmarks/`` write, read where the book runs.

:func:`read_benchmark` finds ``benchmarks/results/<name>`` from the working folder upwards (a
chapter runs in ``book/``, a test in the repository root). An installed package without the
repository (Google Colab) has no such folder: the function then returns ``None`` and the
chapter says the figures are not available.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

RESULTS = Path("benchmarks") / "results"
"""Where the benchmark scripts write, relative to the repository root."""


def find_benchmark(name: str, start: str | os.PathLike | None = None) -> Path | None:
    """The path of ``benchmarks/results/<name>`` in ``start`` (default: the working folder) or
    the nearest folder above it that has one; ``None`` if there is none."""
    here = Path(start) if start is not None else Path.cwd()
    for folder in [here, *here.resolve().parents]:
        candidate = folder / RESULTS / name
        if candidate.is_file():
            return candidate
    return None


def read_benchmark(name: str, start: str | os.PathLike | None = None) -> dict[str, Any] | None:
    """The JSON record ``benchmarks/results/<name>`` (see :func:`find_benchmark`), or ``None``."""
    path = find_benchmark(name, start)
    return None if path is None else json.loads(path.read_text())
