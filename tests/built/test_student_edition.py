"""The student edition (``make student``) holds no solution text, and the teacher edition does."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from toc_notebooks import ROOT, toc_notebooks  # noqa: E402

STUDENT_HTML = ROOT / "_build_student" / "_build" / "html"
STUDENT_NOTEBOOKS = ROOT / "_build_student" / "notebooks"
TEACHER_HTML = ROOT / "_build" / "html"

pytestmark = pytest.mark.skipif(
    not (STUDENT_HTML / "index.html").exists(), reason="no student edition: run `make student` first"
)


def _solution_lines(path: Path) -> list[str]:
    """Distinctive prose lines inside the solution blocks of a notebook."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    text = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    blocks = re.findall(r":::\{solution\}.*?\n(.*?)\n:::\s*$", text, flags=re.S | re.M)
    lines = []
    for block in blocks:
        for line in block.split("\n"):
            line = line.strip()
            if len(line) > 40 and not line.startswith((":", "`", "$")) and not re.search(r"[`*${}]", line):
                lines.append(line)
    return lines


@pytest.mark.parametrize("path", toc_notebooks(), ids=lambda p: p.name)
def test_no_solution_text_in_student_edition(path):
    lines = _solution_lines(path)
    if not lines:
        pytest.skip("no solutions in this page")
    page = path.relative_to(ROOT).with_suffix(".html")
    teacher = (TEACHER_HTML / page).read_text(encoding="utf-8")
    student = (STUDENT_HTML / page).read_text(encoding="utf-8")
    assert any(line[:40] in teacher for line in lines), "the check must see solutions in the teacher edition"
    leaked = [line for line in lines if line[:40] in student]
    assert not leaked, f"solution text in the student edition: {leaked[:2]}"
    notebook = (STUDENT_NOTEBOOKS / path.name).read_text(encoding="utf-8")
    assert ":::{solution}" not in notebook and not any(line[:40] in notebook for line in lines)
