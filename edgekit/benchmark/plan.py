"""Which rows a benchmark measures: every file x backend x device x threads x batch that can run
here, each named the way it will be named on another host (`auto` resolved by the backend)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from edgekit.benchmark.results import BenchRow, row_defaults
from edgekit.errors import ConfigError, EdgekitError


class Planned(NamedTuple):
    """One row to measure: a file and how to run it."""

    path: Path
    backend: str | None  # None: the one the file's suffix picks here
    device: str
    threads: int | None
    batch: int


def asked_for(model: Path, backend: str | None, device: str) -> tuple[str, str]:
    """(backend, device) a row asks for: no backend is the one the file's suffix picks here; the
    `auto` device is the first the backend tries here (a backend that runs on the CPU alone: cpu)."""
    from edgekit.runtime.backends import BACKENDS, select_backend

    try:
        chosen = BACKENDS.get(backend) if backend else select_backend(Path(model))
    except EdgekitError:  # no installed backend opens it: the row says so in its reason
        return backend or "auto", device
    return chosen.name, chosen.first_device(device)


def failed_row(planned: Planned, why: str) -> BenchRow:
    """A row that could not be measured, carrying its reason, named by the backend and device it
    asked for (`auto` resolved as a measured row's would be, so it lines up with them and with the
    same row on another host)."""
    backend, device = asked_for(planned.path, planned.backend, planned.device)
    return BenchRow(
        **{
            **row_defaults(),
            "model": str(planned.path),
            "backend": backend,
            "device": device,
            "threads": planned.threads,
        },
        batch=planned.batch,
        error=why,
    )


def plan_rows(
    paths: Sequence[Path],
    backends: Sequence[str],
    devices: Sequence[str],
    threads: Sequence[int | None],
    batches: Sequence[int],
) -> list[Planned]:
    """Every combination that can run here. `all` is every installed backend for the file's kind;
    a named backend that does not open a file is left out for that file (and said if it opens none);
    a device a backend does not run on is left out for it (a TFLite row on `cpu` is its CPU row)."""
    from edgekit.runtime.backends import BACKENDS, DEVICES, backends_for, select_backend
    from edgekit.runtime.files import ModelFile

    for path in paths:  # a missing file, or one that is no model: one sentence, before any row runs
        ModelFile.open(path)
    for name in backends:
        if name not in ("all", "auto"):
            BACKENDS.get(name)  # an unknown name: one sentence with a "did you mean"
    for d in devices:
        if d not in DEVICES:
            raise ConfigError(f"unknown --device {d!r}: use cpu, cuda, tensorrt or auto")
    plan = []
    for path in paths:
        suffix = Path(path).suffix.lower()
        chosen: list[str | None] = []
        for name in backends:
            if name == "all":
                chosen += [b.name for b in backends_for(path) if b.available()] or [None]
            elif name == "auto":
                chosen.append(None)
            elif suffix in BACKENDS.get(name).suffixes:
                chosen.append(name)
        if not chosen:
            raise ConfigError(f"none of --backend {','.join(backends)} opens {Path(path).name}")
        for backend in dict.fromkeys(chosen):
            try:
                runs_on = (BACKENDS.get(backend) if backend else select_backend(path)).runs_on
            except EdgekitError:  # nothing here opens it: its rows say why when they are measured
                runs_on = None
            for device in devices:
                if runs_on is not None and not runs_on(device):
                    continue
                for t in threads:
                    for b in batches:
                        plan.append(Planned(Path(path), backend, device, t, b))
    if not plan:
        raise ConfigError(
            f"no backend that opens these files runs on --device {','.join(devices)} (TFLite and Keras "
            "run on the cpu)"
        )
    return plan
