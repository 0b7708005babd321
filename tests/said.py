"""Checks of what the CLI says, shared by the tests of the commands: that a command names every file
it wrote, and that `info` shows a card in words and rounded numbers, never Python's reprs."""

from __future__ import annotations

import re
from pathlib import Path

# Python's reprs a person should never read: dict and list dumps with quoted keys or items,
# None/True/False
REPRS = re.compile(r"\{'|'\w+':|\['|', '|'\]|\bNone\b|\bTrue\b|\bFalse\b")
NUMBER = re.compile(r"\d+\.\d+")


def too_precise(text: str, most: int = 6) -> list[str]:
    """Numbers in `text` with more than `most` significant digits (0.9309999999999998)."""
    return [n for n in NUMBER.findall(text) if len(n.replace(".", "").lstrip("0")) > most]


def files_under(root: Path) -> set[Path]:
    return {p for p in Path(root).rglob("*")}


def unnamed(root: Path, before: set[Path], output: str) -> list[str]:
    """The files that appeared under `root` since `before` and that `output` does not name: by their
    name, or by a folder they are in that appeared too (`out/ (3 annotated images)`). Hidden files
    (a quickstart's marker, a run's backup) are the command's own."""
    missing = []
    for path in sorted(p for p in Path(root).rglob("*") if p not in before and p.is_file()):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or path.name in output:
            continue
        folders = [f for f in path.parents if f != root and root in f.parents and f not in before]
        if any(f"{f.name}/" in output or str(f) in output for f in folders):
            continue
        missing.append(str(rel))
    return missing


def assert_names_what_it_wrote(root: Path, before: set[Path], result) -> None:
    """Every file a command wrote under `root` is named in what it printed (stdout or stderr)."""
    output = result.stdout + result.stderr
    missing = unnamed(root, before, output)
    assert not missing, f"wrote {missing} without saying so:\n{output}"


def assert_readable_info(stdout: str) -> None:
    """`edgekit info`'s rows: none empty, no Python repr, no float with more than 6 digits after
    the point (digests aside)."""
    lines = stdout.splitlines()[1:]
    rows = [line for line in lines if line.startswith("  ") and not line.startswith("    ")]
    rows = [line for line in rows if not line.endswith(":")]  # a per-class table's heading
    assert rows, stdout
    for line in rows:
        key, _, value = line.strip().partition("  ")
        assert value.strip(), f"an empty row: {line!r}"
        if "sha256" in key:
            continue
        assert not REPRS.search(value), f"a Python repr in info: {line!r}"
        assert not too_precise(value), f"unrounded numbers in info: {line!r}"
