"""The book's structure: every chapter is in the table of contents, committed without outputs, and
follows the chapter template (Colab cell, one parameters cell, exercises with solutions)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from toc_notebooks import ROOT, toc_entries, toc_notebooks

CHAPTERS = [p for p in toc_notebooks() if re.match(r"\d\d_", p.name)]


def _notebook(path: Path) -> dict:
    return json.loads(path.read_text())


def _source(cell: dict) -> str:
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def test_every_toc_entry_exists():
    for entry in toc_entries():
        assert any((ROOT / f"{entry}{ext}").exists() for ext in (".md", ".ipynb")), entry


def test_every_page_in_book_is_in_the_toc():
    entries = set(toc_entries())
    pages = [p for p in (ROOT / "book").rglob("*") if p.suffix in (".md", ".ipynb")]
    pages = [p for p in pages if ".ipynb_checkpoints" not in p.parts]
    missing = [str(p.relative_to(ROOT)) for p in pages
               if str(p.relative_to(ROOT).with_suffix("")) not in entries]
    assert not missing, f"pages not in _toc.yml (so neither built nor tested): {missing}"


@pytest.mark.parametrize("path", toc_notebooks(), ids=lambda p: p.name)
def test_notebook_committed_without_outputs(path):
    for cell in _notebook(path)["cells"]:
        if cell["cell_type"] == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, path.name


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_template(path):
    cells = _notebook(path)["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    text = "\n".join(_source(c) for c in cells if c["cell_type"] == "markdown")
    repo_url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    colab = _source(code[0])
    assert "google.colab" in colab and repo_url in colab, "first code cell installs from the repo URL in Colab"
    assert "remove-cell" in code[0].get("metadata", {}).get("tags", [])
    params = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1 and "seed" in _source(params[0]), "one parameters cell with a seed"
    assert "Learning goals" in text and "## Summary" in text and "## Exercises" in text
    exercises = re.findall(r":::\{exercise\}", text)
    solutions = re.findall(r":::\{solution\}", text)
    assert len(exercises) >= 3 and len(solutions) == len(exercises)
    assert "## Questions" in text
