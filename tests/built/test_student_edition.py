"""The student edition (``make student``) holds no solutions, and the teacher edition does."""

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
SOLUTION_NODE = re.compile(r'class="solution\b')
SOLUTION_DIRECTIVE = re.compile(r"^\s*(:{3,}|`{3,})\{solution\}", re.M)
EXERCISE_DIRECTIVE = re.compile(r"^\s*(:{3,}|`{3,})\{exercise\}", re.M)

pytestmark = pytest.mark.skipif(
    not (STUDENT_HTML / "index.html").exists(), reason="no student edition: run `make student` first"
)


def _markdown(path: Path) -> str:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")


@pytest.mark.parametrize("path", toc_notebooks(), ids=lambda p: p.name)
def test_no_solution_in_student_edition(path):
    source = _markdown(path)
    n_solutions = len(SOLUTION_DIRECTIVE.findall(source))
    if not n_solutions:
        pytest.skip("no solutions in this page")
    page = path.relative_to(ROOT).with_suffix(".html")
    teacher = (TEACHER_HTML / page).read_text(encoding="utf-8")
    student = (STUDENT_HTML / page).read_text(encoding="utf-8")
    assert len(SOLUTION_NODE.findall(teacher)) == n_solutions, "teacher edition shows every solution"
    assert not SOLUTION_NODE.findall(student), "a solution is rendered in the student edition"
    student_source = _markdown(STUDENT_NOTEBOOKS / path.name)
    assert not SOLUTION_DIRECTIVE.search(student_source), "a solution block is left in the notebook"
    assert len(EXERCISE_DIRECTIVE.findall(student_source)) == len(EXERCISE_DIRECTIVE.findall(source))
