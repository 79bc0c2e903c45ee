"""Execute the book's notebooks and dump every glued value, or compare two dumps.

A refactor of ``interest_lib`` must not change what the book says. This script executes every
notebook of ``_toc.yml`` in a fresh kernel (with an empty result cache, so nothing stale is read)
and writes one JSON record per notebook: the text of every value passed to ``myst_nb.glue`` and
the number of code lines a reader sees (code cells not hidden by a ``remove-input``,
``remove-cell`` or ``hide-input`` tag).

    python benchmarks/glued_values.py dump before.json
    python benchmarks/glued_values.py dump after.json
    python benchmarks/glued_values.py compare before.json after.json

``compare`` prints every name whose value changed, appeared or disappeared, and the visible code
lines per chapter before and after; it exits 1 when a value changed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from toc_notebooks import toc_notebooks  # noqa: E402

HIDDEN_TAGS = {"remove-input", "remove-cell", "hide-input", "hide-cell"}


def visible_code_lines(notebook: nbformat.NotebookNode) -> int:
    """Non-blank lines of the code cells a reader of the rendered page sees."""
    lines = 0
    for cell in notebook.cells:
        if cell.cell_type != "code" or HIDDEN_TAGS & set(cell.metadata.get("tags", [])):
            continue
        lines += sum(1 for line in cell.source.splitlines() if line.strip())
    return lines


def glued(notebook: nbformat.NotebookNode) -> dict[str, str]:
    """Name -> plain-text value of every ``glue`` output of an executed notebook."""
    values: dict[str, str] = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            scrap = output.get("metadata", {}).get("scrapbook")
            if scrap is None:
                continue
            data = output.get("data", {})
            text = next((v for k, v in data.items() if k.endswith("text/plain")), None)
            values[scrap["name"]] = text if text is not None else sorted(data)
    return values


def dump(out: Path, only: list[str]) -> None:
    records = {}
    cache = tempfile.mkdtemp(prefix="glue-cache-")
    os.environ["INTEREST_LIB_CACHE"] = cache
    for path in toc_notebooks():
        name = str(path.relative_to(ROOT))
        if only and not any(o in name for o in only):
            continue
        notebook = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        NotebookClient(notebook, timeout=900, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        seconds = time.perf_counter() - start
        records[name] = {"glued": glued(notebook), "visible_code_lines": visible_code_lines(notebook),
                         "seconds": round(seconds, 1)}
        print(f"{name}: {len(records[name]['glued'])} glued values, "
              f"{records[name]['visible_code_lines']} visible code lines, {seconds:.1f} s", flush=True)
    out.write_text(json.dumps(records, indent=1, sort_keys=True, ensure_ascii=False))


def compare(before_path: Path, after_path: Path) -> int:
    before = json.loads(before_path.read_text())
    after = json.loads(after_path.read_text())
    changed = 0
    for name in sorted(set(before) | set(after)):
        old = before.get(name, {"glued": {}, "visible_code_lines": 0})
        new = after.get(name, {"glued": {}, "visible_code_lines": 0})
        same = [k for k in old["glued"] if new["glued"].get(k) == old["glued"][k]]
        diff = [k for k in old["glued"] if k in new["glued"] and new["glued"][k] != old["glued"][k]]
        gone = [k for k in old["glued"] if k not in new["glued"]]
        added = [k for k in new["glued"] if k not in old["glued"]]
        lines_old, lines_new = old["visible_code_lines"], new["visible_code_lines"]
        share = (lines_new - lines_old) / lines_old if lines_old else 0.0
        print(f"{name}: {len(same)} identical, {len(diff)} changed, {len(gone)} removed, "
              f"{len(added)} added; visible code lines {lines_old} -> {lines_new} ({share:+.0%})")
        for key in diff:
            print(f"    changed {key}: {old['glued'][key]} -> {new['glued'][key]}")
        for key in gone:
            print(f"    removed {key}: {old['glued'][key]}")
        for key in added:
            print(f"    added {key}: {new['glued'][key]}")
        changed += len(diff)
    return 1 if changed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("dump", help="execute the notebooks and write their glued values")
    run.add_argument("out", type=Path)
    run.add_argument("--only", nargs="*", default=[], help="notebooks whose path contains this")
    cmp_ = sub.add_parser("compare", help="compare two dumps")
    cmp_.add_argument("before", type=Path)
    cmp_.add_argument("after", type=Path)
    args = parser.parse_args()
    if args.command == "dump":
        dump(args.out, args.only)
        return 0
    return compare(args.before, args.after)


if __name__ == "__main__":
    raise SystemExit(main())
