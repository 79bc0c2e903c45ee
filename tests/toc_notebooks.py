"""Print the notebooks listed in ``_toc.yml``, one path per line (used by ``make test``)."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def toc_entries(toc_path: Path = ROOT / "_toc.yml") -> list[str]:
    """Every ``root`` and ``file`` entry of the table of contents, in order."""
    toc = yaml.safe_load(toc_path.read_text())
    entries = [toc["root"]]

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "file" in node:
                entries.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(toc.get("parts", toc.get("chapters", [])))
    return entries


def toc_notebooks() -> list[Path]:
    """The ``.ipynb`` files behind the entries of the table of contents."""
    paths = [ROOT / f"{entry}.ipynb" for entry in toc_entries()]
    return [p for p in paths if p.exists()]


def parameters_cell(notebook: str) -> dict:
    """The literal values of a notebook's parameters cell (``book/<notebook>.ipynb``), as a
    reader sees them: tests read them from there instead of typing them again."""
    import ast
    import json

    cells = json.loads((ROOT / "book" / f"{notebook}.ipynb").read_text())["cells"]
    cell = next(c for c in cells if "parameters" in c.get("metadata", {}).get("tags", []))
    values = {}
    for node in ast.parse("".join(cell["source"])).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:  # a call, e.g. the device: not a literal
                continue
    return values


if __name__ == "__main__":
    for path in toc_notebooks():
        print(path.relative_to(ROOT))
