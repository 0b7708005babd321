"""A fuzz corpus: seeded mutations of real model files, and a driver that runs edgekit on each in a
child process and sorts what happened.

A model file comes from elsewhere; whatever its bytes, `edgekit info` and `edgekit run` must end
with exit 0 or 1 and at most one line of error, never a crash (a signal), a hang or a traceback.

    python tests/fuzz.py MODEL [MODEL ...] --per-kind 500 --image digit.png   # prints outcomes
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

MUTATIONS = ("truncate", "bitflip", "span", "random-bytes")


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
    verdict: str  # "ok" (exit 0), "refused" (exit 1, one line), or what went wrong
    detail: str = ""

    @property
    def bad(self) -> bool:
        return self.verdict not in ("ok", "refused")


def run_one(args: list[str], timeout: float, env: dict[str, str]) -> tuple[str, str]:
    """Run `edgekit ARGS` in a child; (verdict, detail)."""
    cmd = [sys.executable, "-m", "edgekit.cli", *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
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
        lines = [x for x in err.splitlines() if x.strip()]
        return ("refused", lines[0]) if len(lines) == 1 else ("several lines", err[-300:])
    return f"exit {proc.returncode}", err[-200:]


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
    """Mutate `model` `count` times and run `info` (and `run` on `image`) on each mutant."""
    data = Path(model).read_bytes()
    folder = Path(folder or tempfile.mkdtemp(prefix="edgekit-fuzz-"))
    folder.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, EDGEKIT_CACHE=str(folder / "cache"), PYTHONFAULTHANDLER="")
    env.pop("PYTHONFAULTHANDLER")
    jobs = []
    for i, (how, blob) in enumerate(mutants(data, count, seed)):
        path = folder / f"{i:04d}-{how}{model.suffix}"
        path.write_bytes(blob)
        jobs.append(("info", how, ["info", str(path)]))
        if image is not None:
            jobs.append(("run", how, ["run", str(path), "--source", str(image), "--json"]))

    def go(job: tuple[str, str, list[str]]) -> Outcome:
        name, how, args = job
        verdict, detail = run_one(args, timeout, env)
        return Outcome(name, how, verdict, f"{args[1]}: {detail}" if detail else "")

    out = []
    with ThreadPoolExecutor(workers) as pool:
        for o in pool.map(go, jobs):
            out.append(o)
            if progress is not None:
                progress(o)
    return out


def summary(outcomes: list[Outcome]) -> dict[str, dict[str, int]]:
    """{command: {verdict: count}}."""
    table: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for o in outcomes:
        table[o.command][o.verdict] += 1
    return {k: dict(v) for k, v in table.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--per-kind", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image", type=Path)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    bad = 0

    def show(o: Outcome) -> None:
        if o.bad:
            print(f"  {o.command} {o.mutation} {o.verdict}: {o.detail}", flush=True)

    for model in args.models:
        outcomes = fuzz(model, args.per_kind, seed=args.seed, image=args.image, timeout=args.timeout,
                        workers=args.workers, progress=show)  # fmt: skip
        bad += sum(o.bad for o in outcomes)
        print(f"{model.name}: {args.per_kind} mutants: {summary(outcomes)}", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
