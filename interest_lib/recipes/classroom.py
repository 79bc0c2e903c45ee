"""Classroom tools: a student edition of the chapters with the solutions taken out.

Solutions in the book are ``solution`` directives of sphinx-exercise inside markdown cells::

    :::{solution} ex-logs-seed
    :class: dropdown
    ...
    :::

:func:`strip_solutions` removes every such block (and code cells tagged ``solution``) from a
notebook; :func:`write_student_notebooks` does it for every chapter. The student *book* is built by
``make student`` with sphinx-exercise's ``hide_solutions`` option.

Command line::

    python -m interest_lib.recipes.classroom notebooks OUTPUT_DIR NOTEBOOK [NOTEBOOK ...]
    python -m interest_lib.recipes.classroom config BOOK_CONFIG STUDENT_CONFIG [EXECUTION_CACHE]
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import yaml

_OPEN = re.compile(r"^(?P<fence>:{3,}|`{3,})\{solution\}")
_FENCE = re.compile(r"^(?P<fence>:{3,}|`{3,})(?P<rest>.*)$")


def strip_solution_blocks(markdown: str) -> str:
    """Remove every ``{solution}`` directive block from MyST markdown text.

    A block opens with a colon or backtick fence followed by ``{solution}`` and closes with the
    same fence alone on a line; fences of other characters or lengths inside it (code blocks) are
    skipped over. An unclosed block is an error, so nothing is silently kept or lost.
    """
    out: list[str] = []
    lines = markdown.split("\n")
    i = 0
    while i < len(lines):
        opening = _OPEN.match(lines[i].strip())
        if not opening:
            out.append(lines[i])
            i += 1
            continue
        fence = opening.group("fence")
        i += 1
        inner: str | None = None  # the fence of a nested block we are inside
        while i < len(lines):
            stripped = lines[i].strip()
            match = _FENCE.match(stripped)
            if match and inner is None and match.group("fence") == fence and not match.group("rest"):
                break
            if match and inner is None and match.group("fence") != fence and match.group("rest"):
                inner = match.group("fence")
            elif match and inner is not None and match.group("fence") == inner and not match.group("rest"):
                inner = None
            i += 1
        else:
            raise ValueError(f"unclosed solution block opened with {fence!r}")
        i += 1  # skip the closing fence
        while out and out[-1].strip() == "" and i < len(lines) and lines[i].strip() == "":
            i += 1  # do not leave a double blank line behind
    return "\n".join(out)


def strip_solutions(notebook: dict) -> dict:
    """A copy of a notebook (nbformat JSON) without solution blocks and solution-tagged cells."""
    cells = []
    for cell in notebook["cells"]:
        if "solution" in cell.get("metadata", {}).get("tags", []):
            continue
        cell = dict(cell)
        if cell["cell_type"] == "markdown":
            source = cell["source"]
            text = "".join(source) if isinstance(source, list) else source
            cell["source"] = strip_solution_blocks(text)
        cells.append(cell)
    return {**notebook, "cells": cells}


def write_student_notebooks(notebooks: list[Path], output_dir: Path) -> list[Path]:
    """Write a solution-free copy of each notebook into ``output_dir``, keeping sub-folders."""
    output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks:
        student = strip_solutions(json.loads(Path(path).read_text(encoding="utf-8")))
        target = output_dir / Path(path).name
        target.write_text(json.dumps(student, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(target)
    return written


def student_config(book_config: Path, student_config_path: Path,
                   execution_cache: Path | None = None) -> dict:
    """Write the Jupyter Book configuration of the student edition.

    The same book, with sphinx-exercise's ``hide_solutions`` on and "student edition" in the title.
    ``execution_cache`` points the build at the teacher edition's executed notebooks, so the
    chapters are not run a second time.
    """
    config = yaml.safe_load(Path(book_config).read_text(encoding="utf-8"))
    config["title"] = f"{config.get('title', 'Book')} (student edition)"
    config.setdefault("sphinx", {}).setdefault("config", {})["hide_solutions"] = True
    if execution_cache is not None:
        config.setdefault("execute", {})["cache"] = str(Path(execution_cache).resolve())
    student_config_path = Path(student_config_path)
    student_config_path.parent.mkdir(parents=True, exist_ok=True)
    student_config_path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True),
                                   encoding="utf-8")
    return config


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m interest_lib.recipes.classroom")
    commands = parser.add_subparsers(dest="command", required=True)
    nb = commands.add_parser("notebooks", help="write solution-free copies of notebooks")
    nb.add_argument("output_dir", type=Path)
    nb.add_argument("notebooks", type=Path, nargs="+")
    cfg = commands.add_parser("config", help="write the student edition's _config.yml")
    cfg.add_argument("book_config", type=Path)
    cfg.add_argument("student_config", type=Path)
    cfg.add_argument("execution_cache", type=Path, nargs="?")
    args = parser.parse_args(argv)
    if args.command == "notebooks":
        for path in write_student_notebooks(args.notebooks, args.output_dir):
            print(path)
    else:
        student_config(args.book_config, args.student_config, args.execution_cache)
        print(args.student_config)


if __name__ == "__main__":
    main()
