import json

import pytest

from interest_lib.recipes.classroom import (
    strip_solution_blocks,
    strip_solutions,
    write_student_notebooks,
)

TEXT = """## Exercises

:::{exercise}
:label: ex-a
Do it.
:::

:::{solution} ex-a
:class: dropdown
Secret answer.
```python
print("secret code")
```
:::

Afterwards.
"""


def test_solution_block_removed_with_nested_code():
    out = strip_solution_blocks(TEXT)
    assert "Secret answer" not in out and "secret code" not in out
    assert ":::{exercise}" in out and "Do it." in out and "Afterwards." in out


def test_backtick_fenced_solution_removed():
    text = "Before\n````{solution} ex-b\nhidden\n```python\nx = 1\n```\n````\nAfter"
    assert strip_solution_blocks(text) == "Before\nAfter"


def test_unclosed_solution_is_an_error():
    with pytest.raises(ValueError, match="unclosed"):
        strip_solution_blocks(":::{solution} ex-c\nnever closed\n")


def test_notebook_cells(tmp_path):
    nb = {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": TEXT},
            {"cell_type": "code", "metadata": {"tags": ["solution"]}, "source": "answer = 42",
             "outputs": [], "execution_count": None},
            {"cell_type": "code", "metadata": {}, "source": "x = 1", "outputs": [],
             "execution_count": None},
        ],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
    }
    student = strip_solutions(nb)
    assert len(student["cells"]) == 2 and "Secret" not in student["cells"][0]["source"]
    path = tmp_path / "ch.ipynb"
    path.write_text(json.dumps(nb))
    [written] = write_student_notebooks([path], tmp_path / "student")
    assert "Secret" not in written.read_text() and "answer = 42" not in written.read_text()


def test_student_config_hides_solutions(tmp_path):
    from interest_lib.recipes.classroom import student_config

    src = tmp_path / "_config.yml"
    src.write_text("title: Book\nsphinx:\n  extra_extensions: [sphinx_exercise]\n")
    config = student_config(src, tmp_path / "student" / "_config.yml", tmp_path / "cache")
    assert config["sphinx"]["config"]["hide_solutions"] is True
    assert config["sphinx"]["extra_extensions"] == ["sphinx_exercise"]
    assert "student edition" in (tmp_path / "student" / "_config.yml").read_text()
