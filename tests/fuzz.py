"""A fuzz corpus: seeded mutations of real model files, and a driver that runs edgekit on each in a
child process and sorts what happened.

A model file comes from elsewhere; whatever its bytes, `edgekit info`, `edgekit run` and
`edgekit bench` must end with exit 0 or 1 and at most one line of error, never a crash (a signal), a
hang or a traceback.

    python tests/fuzz.py MODEL [MODEL ...] --per-kind 500 --image digit.png   # prints outcomes

The models' mutants are taken in turn (one of each file, then the next of each), so a pass cut
short by `--until` has tried every kind about equally; `--log` keeps every outcome as a JSON line.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

MUTATIONS = ("truncate", "bitflip", "span", "random-bytes")
COMMANDS = ("info", "run", "bench")
# a short bench: the point is what it does with the file, not the timing
PROGRESS = re.compile(r"^\[\d+/\d+\] ")
BENCH_ARGS = ("--runs", "3", "--warmup", "0", "--eval-samples", "20", "--no-save", "--json")


def mutate(data: bytes, how: str, rng: random.Random) -> bytes:
    """One mutant of `data`: cut short, a few bits flipped, a span overwritten (with random bytes or
    another part of the file), or a few single bytes replaced."""
    n = len(data)
    if how == "truncate":
        return data[: rng.randrange(0, n)]
    out = bytearray(data)
    if how == "bitflip":
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(n)
            out[i] ^= 1 << rng.randrange(8)
    elif how == "span":
        length = rng.randint(1, min(256, n))
        at = rng.randrange(0, n - length + 1)
        if rng.random() < 0.5:
            out[at : at + length] = rng.randbytes(length)
        else:
            src = rng.randrange(0, n - length + 1)
            out[at : at + length] = data[src : src + length]
    elif how == "random-bytes":
        for _ in range(rng.randint(1, 16)):
            out[rng.randrange(n)] = rng.randrange(256)
    else:
        raise ValueError(f"unknown mutation {how!r}; one of {', '.join(MUTATIONS)}")
    return bytes(out)


def mutants(data: bytes, count: int, seed: int) -> Iterator[tuple[str, bytes]]:
    """`count` mutants of `data`, the same ones for the same seed, the mutations taken in turn."""
    rng = random.Random(seed)
    for i in range(count):
        how = MUTATIONS[i % len(MUTATIONS)]
        yield how, mutate(data, how, rng)


@dataclass(frozen=True)
class Outcome:
    command: str
    mutation: str
    kind: str  # which file's mutant (its name)
    verdict: str  # "ok" (exit 0), "refused" (exit 1, one line), or what went wrong
    detail: str = ""

    @property
    def bad(self) -> bool:
        return self.verdict not in ("ok", "refused")


def run_one(args: list[str], timeout: float, env: dict[str, str]) -> tuple[str, str]:
    """Run `edgekit ARGS` in a child; (verdict, detail)."""
    cmd = [sys.executable, "-m", "edgekit.cli", *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return "hang", f"no answer in {timeout:.0f} s"
    err = proc.stderr.strip()
    if proc.returncode < 0:
        return "crash", f"signal {-proc.returncode}: {err[-200:]}"
    if "Traceback" in err or "Traceback" in proc.stdout:
        return "traceback", err[-300:]
    if "NaN" in proc.stdout or "Infinity" in proc.stdout:
        return "non-finite output", proc.stdout[-200:]
    if proc.returncode == 0:
        return "ok", ""
    if proc.returncode == 1:
        # bench's progress lines (`[1/1] ROW: failed (...)`) come before its one line of error
        lines = [x for x in err.splitlines() if x.strip() and not PROGRESS.match(x)]
        return ("refused", lines[0]) if len(lines) == 1 else ("several lines", err[-300:])
    return f"exit {proc.returncode}", err[-200:]


Job = tuple[str, str, str, list[str]]  # (kind, command, mutation, edgekit's arguments)


def jobs_for(
    model: Path, count: int, folder: Path, *, seed: int = 0, image: Path | None = None
) -> Iterator[list[Job]]:
    """For each of `count` mutants of `model` (written into `folder`): its `info`, and with an image
    its `run` and `bench`."""
    data = Path(model).read_bytes()
    folder.mkdir(parents=True, exist_ok=True)
    for i, (how, blob) in enumerate(mutants(data, count, seed)):
        path = folder / f"{model.stem}-{i:04d}-{how}{model.suffix}"
        path.write_bytes(blob)
        jobs = [(model.name, "info", how, ["info", str(path)])]
        if image is not None:
            jobs.append((model.name, "run", how, ["run", str(path), "--source", str(image), "--json"]))
            jobs.append((model.name, "bench", how, ["bench", str(path), *BENCH_ARGS]))
        yield jobs


def run_jobs(
    jobs: Iterable[Job],
    folder: Path,
    *,
    timeout: float = 60.0,
    workers: int = 2,
    until: float | None = None,
    progress: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Run each job in a child process, `workers` at a time; none started after `until` (a time)."""
    env = dict(os.environ, EDGEKIT_CACHE=str(folder / "cache"))
    env.pop("PYTHONFAULTHANDLER", None)  # a crash must show as the signal, not a handled dump

    def go(job: Job) -> Outcome | None:
        kind, name, how, args = job
        if until is not None and time.time() > until:
            return None
        verdict, detail = run_one(args, timeout, env)
        return Outcome(name, how, kind, verdict, f"{args[1]}: {detail}" if detail else "")

    out = []
    with ThreadPoolExecutor(workers) as pool:
        for o in pool.map(go, jobs):
            if o is None:
                continue
            out.append(o)
            if progress is not None:
                progress(o)
    return out


def fuzz(
    model: Path,
    count: int,
    *,
    seed: int = 0,
    image: Path | None = None,
    timeout: float = 60.0,
    workers: int = 2,
    folder: Path | None = None,
    progress: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Mutate `model` `count` times and run `info` (and `run` and `bench` on `image`) on each."""
    folder = Path(folder or tempfile.mkdtemp(prefix="edgekit-fuzz-"))
    jobs = itertools.chain.from_iterable(jobs_for(model, count, folder, seed=seed, image=image))
    return run_jobs(jobs, folder, timeout=timeout, workers=workers, progress=progress)


def summary(outcomes: list[Outcome]) -> dict[str, dict[str, int]]:
    """{command: {verdict: count}}."""
    table: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for o in outcomes:
        table[o.command][o.verdict] += 1
    return {k: dict(v) for k, v in table.items()}


def interleave(streams: list[Iterator[list[Job]]]) -> Iterator[Job]:
    """One mutant's jobs from each stream in turn, until all are spent."""
    for group in itertools.zip_longest(*streams):
        for jobs in group:
            yield from jobs or []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--per-kind", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image", type=Path)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--folder", type=Path, help="where the mutants go (default: a new temp folder)")
    parser.add_argument("--until", type=float, help="start nothing after this Unix time")
    parser.add_argument("--log", type=Path, help="append every outcome here as a JSON line")
    args = parser.parse_args(argv)
    folder = Path(args.folder or tempfile.mkdtemp(prefix="edgekit-fuzz-"))
    log = args.log.open("a") if args.log else None

    def show(o: Outcome) -> None:
        if log is not None:
            log.write(json.dumps(o.__dict__) + "\n")
            log.flush()
        if o.bad:
            print(f"  {o.kind} {o.command} {o.mutation} {o.verdict}: {o.detail}", flush=True)

    streams = [jobs_for(m, args.per_kind, folder, seed=args.seed, image=args.image) for m in args.models]
    outcomes = run_jobs(interleave(streams), folder, timeout=args.timeout, workers=args.workers,
                        until=args.until, progress=show)  # fmt: skip
    for model in args.models:
        mine = [o for o in outcomes if o.kind == model.name]
        tried = sum(o.command == "info" for o in mine)
        print(f"{model.name}: {tried} mutants: {summary(mine)}", flush=True)
    return 1 if any(o.bad for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
