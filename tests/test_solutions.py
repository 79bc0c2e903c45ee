"""Every exercise solution runs: each chapter is executed, then each solution's code after it.

For every notebook of ``_toc.yml`` the chapter runs top to bottom in one kernel (working directory:
the notebook's folder), and then every ```` ```python ```` block inside a ``{solution}``
directive of its markdown cells runs, in order, in the same kernel, as a reader would paste it
at the end of the chapter. A solution that raises, or that has no Python code at all, fails the
test with the chapter and the solution's label.

Executing every chapter again takes minutes, so this test carries the marker ``solutions``:
``make test`` deselects it and ``make test-solutions`` runs it.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from toc_notebooks import ROOT, toc_notebooks

pytestmark = pytest.mark.solutions

_OPEN = re.compile(r"^(?P<fence>:{3,}|`{3,})\{solution\}\s*(?P<label>\S*)")
_FENCE = re.compile(r"^(?P<fence>:{3,}|`{3,})(?P<rest>.*)$")
CELL_TIMEOUT_S = 600


def solution_blocks(markdown: str) -> list[tuple[str, list[str]]]:
    """``(label, python blocks)`` of every ``{solution}`` directive in MyST markdown, in order.

    A directive opens with a colon or backtick fence followed by ``{solution}`` and its label and
    closes with the same fence alone on a line; inside it, every block fenced by backticks with
    the language ``python`` is a piece of the solution's code.
    """
    found: list[tuple[str, list[str]]] = []
    lines = markdown.split("\n")
    i = 0
    while i < len(lines):
        opening = _OPEN.match(lines[i].strip())
        i += 1
        if not opening:
            continue
        fence, label = opening.group("fence"), opening.group("label") or "(no label)"
        code: list[str] = []
        inner: str | None = None  # the fence of a code block we are inside
        body: list[str] = []
        is_python = False
        while i < len(lines):
            stripped = lines[i].strip()
            match = _FENCE.match(stripped)
            i += 1
            if inner is None and match and match.group("fence") == fence and not match.group("rest"):
                break
            if inner is None and match and match.group("rest"):
                inner, body = match.group("fence"), []
                language = match.group("rest").strip()
                is_python = match.group("fence").startswith("`") and language == "python"
            elif inner is not None and match and match.group("fence") == inner and not match.group("rest"):
                if is_python:
                    code.append("\n".join(body))
                inner = None
            elif inner is not None:
                body.append(lines[i - 1])
        else:
            raise ValueError(f"solution {label}: the block opened with {fence!r} is never closed")
        found.append((label, code))
    return found


def notebook_solutions(notebook: nbformat.NotebookNode) -> list[tuple[str, list[str]]]:
    """Every solution of a notebook's markdown cells, in the order of the chapter."""
    return [solution for cell in notebook.cells if cell.cell_type == "markdown"
            for solution in solution_blocks(cell.source)]


def test_solution_blocks_are_found():
    """The parser finds colon and backtick directives, their labels and only their Python code."""
    text = "\n".join([
        "Text ```python\nnot a solution\n```",
        ":::{solution} ex-a", ":class: dropdown", "```python", "x = 1", "```", "prose",
        "```text", "not code", "```", "```python", "y = x + 1", "```", ":::",
        "````{solution} ex-b", "```python", "z = 2", "```", "````",
        ":::{solution} ex-c", "only prose", ":::",
    ])
    assert solution_blocks(text) == [("ex-a", ["x = 1", "y = x + 1"]), ("ex-b", ["z = 2"]),
                                     ("ex-c", [])]
    with pytest.raises(ValueError, match="never closed"):
        solution_blocks(":::{solution} ex-d\n```python\nx = 1\n```")


NOTEBOOKS = toc_notebooks()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[str(p.relative_to(ROOT)) for p in NOTEBOOKS])
def test_every_solution_runs_after_its_chapter(path: Path):
    notebook = nbformat.read(path, as_version=4)
    solutions = notebook_solutions(notebook)
    if not solutions:
        pytest.skip(f"{path.name} has no exercise solutions")
    chapter = path.relative_to(ROOT)
    client = NotebookClient(notebook, timeout=CELL_TIMEOUT_S, allow_errors=False,
                            resources={"metadata": {"path": str(path.parent)}})
    failures: list[str] = []
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type == "code":
                try:
                    client.execute_cell(cell, index)
                except CellExecutionError as error:
                    pytest.fail(f"{chapter}: cell {index} of the chapter fails, so its solutions "
                                f"cannot run:\n{error}")
        for label, blocks in solutions:
            if not blocks:
                failures.append(f"{label}: the solution has no ```python code")
                continue
            for number, code in enumerate(blocks, start=1):
                cell = nbformat.v4.new_code_cell(code)
                notebook.cells.append(cell)
                try:
                    client.execute_cell(cell, len(notebook.cells) - 1)
                except CellExecutionError as error:
                    failures.append(f"{label} (code block {number}): {_last_line(error)}")
    assert not failures, f"{chapter}: solutions that do not run:\n" + "\n".join(failures)


def _last_line(error: CellExecutionError) -> str:
    """The exception line of a cell's error (its type and message), without the traceback."""
    name, value = getattr(error, "ename", ""), getattr(error, "evalue", "")
    if name:
        return f"{name}: {value}"
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return lines[-1] if lines else "error"
