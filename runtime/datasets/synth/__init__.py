"""Data generators: the datasets the project makes so every recipe trains with no network.

Each is a command (`edgekit data make NAME --out DIR`) so users can see and reuse them. A generator
writes into an empty temporary folder; `make` renames it into place only when it has finished, so
an interrupted run never leaves half a dataset where a good one stood."""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import ConfigError
from edgekit.fileio import check_writable, umask, write_text
from edgekit.registry import Registry


@dataclass(frozen=True)
class Generator:
    name: str
    description: str
    # (an empty folder to fill, how many samples (None: the generator's default), seed) -> a summary
    make: Callable[[Path, int | None, int], str]
    recipes: tuple[str, ...] = ()  # the recipes that train on what it makes
    needs: str = ""  # a system tool it runs, said by `edgekit doctor` (e.g. "espeak-ng")


GENERATORS: Registry[Generator] = Registry("data generator", package=__name__)


def get_generator(name: str) -> Generator:
    return GENERATORS.get(name)


def generator_names() -> list[str]:
    return GENERATORS.names()


def make(name: str, out: Path, *, count: int | None = None, seed: int = 0, force: bool = False) -> str:
    """Run generator `name` into `out` atomically; returns its one-line summary."""
    gen = get_generator(name)
    out = Path(out)
    if count is not None and count < 1:
        raise ConfigError("--count must be at least 1")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ConfigError(f"{out} is not empty: choose another --out, or pass --force to replace it")
    check_writable(out, force=True)  # the folder it goes in, named, before any sample is made
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent))
    except OSError as e:  # said of the folder asked for, never of the temporary one beside it
        raise ConfigError(f"cannot write {out}: {e.strerror or e} in {out.parent}") from None
    os.chmod(tmp, 0o777 & ~umask())  # mkdtemp makes 0700; a made folder honours the umask
    try:
        summary = gen.make(tmp, count, seed)
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary.replace(str(tmp), str(out))  # a generator names the folder it was given


def csv_text(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A header and rows as CSV text with "\n" line ends (the shipped corpora are byte-exact)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return out.getvalue()


def write_corpus(path: Path, text: str) -> tuple[int, int]:
    """Write a `...,split` corpus made by `csv_text`; returns (rows, rows held out for testing)."""
    write_text(path, text)
    rows = list(csv.reader(io.StringIO(text)))[1:]
    return len(rows), sum(r[-1] == "test" for r in rows)


def pick(rng: np.random.Generator, items: Sequence[Any]) -> Any:
    """One of `items`, drawn from `rng`."""
    return items[int(rng.integers(len(items)))]


def distinct_rows(
    rng: np.random.Generator,
    make: Callable[[Sequence[str]], tuple[str, ...]],
    splits: Sequence[tuple[str, Sequence[str], int]],
    seen: set[str] | None = None,
) -> list[tuple[str, ...]]:
    """Rows of a generated corpus: for each (split, frames, count), up to `count` rows that `make`
    writes from a frame drawn at random, each row's first field new (ignoring case) to `seen`, and
    the split appended. A tiny frame set gives fewer rows rather than looping forever. The rows come
    back shuffled, splits interleaved, as a real file would hold them."""
    seen = set() if seen is None else seen
    rows: list[tuple[str, ...]] = []
    for split, frames, k in splits:
        made, tries = 0, 0
        while made < k and tries < 50 * k + 100:
            tries += 1
            row = make(pick(rng, tuple(frames)))
            if row[0].lower() in seen:
                continue
            seen.add(row[0].lower())
            rows.append((*row, split))
            made += 1
    return rows


def shuffled(rng: np.random.Generator, rows: Sequence[Any]) -> list[Any]:
    """`rows` in an order drawn from `rng` (splits and classes interleaved)."""
    order = rng.permutation(len(rows))
    return [rows[i] for i in order]
