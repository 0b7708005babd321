"""The benchmark's results: one `BenchRow` per file x backend x device x threads x batch, and the
versioned JSON (and CSV) files they are kept in, which `edgekit compare` merges across hosts and a
remote run brings back from a device. Every raw per-run time is kept in the row (`extra`)."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from edgekit.errors import DataError, first_line
from edgekit.fileio import write_text
from edgekit.runtime import hostinfo

SCHEMA = "edgekit-bench"
SCHEMA_VERSION = 2  # 1: the rows of edgekit <= 0.x before per-row processes (no schema fields)
READS = (1, 2)


@dataclass
class BenchRow:
    model: str
    backend: str
    device: str
    format: str
    quantization: str
    size_bytes: int
    load_ms: float
    first_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    runs: int
    threads: int | None
    accuracy: float | None  # classifiers: top-1 accuracy on held-out data
    accuracy_samples: int
    extra: dict[str, Any] = field(default_factory=dict)
    metric: str | None = None  # the task's headline metric (accuracy, iou, map50) ...
    metric_value: float | None = None  # ... and its value on the held-out samples
    task: str = ""
    recipe: str = ""
    batch: int = 1
    providers: list[str] = field(default_factory=list)  # what ran (ONNX Runtime), never what was asked
    std_ms: float = 0.0
    cv: float = 0.0
    ci_low_ms: float = 0.0
    ci_high_ms: float = 0.0
    stable: bool = False
    throughput: float = 0.0  # items per second at this batch size (batch / mean)
    peak_rss_mb: float | None = None
    pipeline_p50_ms: float | None = None  # raw input to result, beside the bare call's p50
    load_start: float | None = None  # 1-minute load average when the row began and ended
    load_end: float | None = None
    busy: bool = False
    bar_points: float | None = None  # the card's allowed metric drop (points) against its reference
    error: str | None = None  # why this row could not be measured (the others go on)
    # two-sided Mann-Whitney p of this row's per-run times against the baseline row's (None: no
    # baseline, or this row is it); above SIGNIFICANCE the two are not told apart
    p_vs_baseline: float | None = None

    @property
    def name(self) -> str:
        """How a row is named in tables and by --baseline: file, backend, device, threads, batch."""
        t = "default" if self.threads is None else str(self.threads)
        return f"{Path(self.model).name}:{self.backend}:{self.device}:t{t}:b{self.batch}"

    @property
    def label(self) -> str:
        """How a row is named for people: the file, backend and device, then threads and batch where
        they were set."""
        parts = [Path(self.model).name, "on", self.backend, self.device]
        if self.threads is not None:
            parts.append(f"{self.threads} thread{'s' if self.threads != 1 else ''}")
        if self.batch != 1:
            parts.append(f"batch {self.batch}")
        return " ".join(parts)

    @property
    def key(self) -> str:
        """The same row on another host: the name with the device as asked (the file by name)."""
        return self.name

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BenchRow:
        """A row from JSON or CSV; fields a schema-1 row lacks take their defaults."""
        known = {f.name for f in fields(cls)}
        return cls(**{**row_defaults(), **{k: v for k, v in d.items() if k in known}})


def row_defaults() -> dict[str, Any]:
    """The fields a schema-1 row may lack, with the values it stands for."""
    return {
        "model": "",
        "backend": "",
        "device": "",
        "format": "",
        "quantization": "",
        "size_bytes": 0,
        "load_ms": 0.0,
        "first_ms": 0.0,
        "p50_ms": 0.0,
        "p90_ms": 0.0,
        "p99_ms": 0.0,
        "mean_ms": 0.0,
        "runs": 0,
        "threads": None,
        "accuracy": None,
        "accuracy_samples": 0,
    }


def machine() -> dict[str, Any]:
    """The host, with the keys results written before schema 2 had (platform, processor, cpus)."""
    import platform

    h = hostinfo.host()
    return {
        **h,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": h["cpu"]["model"],
        "cpus": h["cpu"]["cores"],
    }


def result_doc(rows: Sequence[BenchRow], host: dict[str, Any] | None = None, **more: Any) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "machine": host or machine(),
        "results": [asdict(r) for r in rows],
        **more,
    }


def save_json(rows: Sequence[BenchRow], path: Path, host: dict[str, Any] | None = None, **more: Any) -> Path:
    return write_text(Path(path), json.dumps(result_doc(rows, host, **more), indent=1))


def default_result_path(host: dict[str, Any], folder: Path = Path("bench-results")) -> Path:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", str(host.get("hostname") or "host")) or "host"
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return folder / f"{name}-{stamp}.json"


@dataclass
class BenchResult:
    """A result file read back: its host, its rows, where it came from."""

    path: Path
    host: dict[str, Any]
    rows: list[BenchRow]
    schema_version: int

    @property
    def host_name(self) -> str:
        return str(self.host.get("hostname") or self.path.stem)


NOT_A_RESULT = "give the files `edgekit bench` saves (bench-results/HOST-TIME.json, or its --out)"


def load_json(path: Path) -> dict[str, Any]:
    """A result file's JSON; a file that is not one JSON document is one sentence saying what it
    looks like instead (JSON lines, as `edgekit run --json` writes them), never the parser's text."""
    try:
        text = Path(path).read_text()
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read benchmark results {path}: {first_line(e)}") from None
    try:
        return json.loads(text)
    except ValueError:
        pass
    lines = [line for line in text.splitlines() if line.strip()]
    try:
        several = len(lines) > 1 and all(isinstance(json.loads(line), dict) for line in lines[:2])
    except ValueError:
        several = False
    what = "it holds JSON lines (as `edgekit run --json` prints), not one result" if several else "it is not JSON"
    raise DataError(f"cannot read bench results from {path}: {what}; {NOT_A_RESULT}")


def load_result(path: Path) -> BenchResult:
    """A result file of any schema this edgekit reads; another schema, or a file that is not a result,
    is one sentence naming it."""
    path = Path(path)
    doc = load_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), list):
        raise DataError(f"{path} is not an edgekit bench result (no 'results' list): {NOT_A_RESULT}")
    version = doc.get("schema_version", 1)
    if doc.get("schema", SCHEMA) != SCHEMA or version not in READS:
        raise DataError(
            f"{path} is a result of schema {doc.get('schema', SCHEMA)} version {version}; this edgekit reads "
            f"{SCHEMA} versions {', '.join(map(str, READS))}: upgrade edgekit or re-run the bench"
        )
    rows = []
    for i, d in enumerate(doc["results"]):
        if (
            not isinstance(d, dict)
            or not isinstance(d.get("model"), str)
            or not isinstance(d.get("p50_ms", 0), int | float)
        ):
            raise DataError(f"{path}: result {i + 1} is malformed (it needs model, backend and p50_ms)")
        try:
            rows.append(BenchRow.from_dict(d))
        except TypeError as e:
            raise DataError(f"{path}: result {i + 1} is malformed: {e}") from None
    if isinstance(doc.get("baseline"), dict):  # the quickstart's file keeps its Keras row apart
        rows.insert(0, BenchRow.from_dict(doc["baseline"]))
    host = doc.get("machine") if isinstance(doc.get("machine"), dict) else {}
    return BenchResult(path, host, rows, int(version))


CSV_FIELDS = [f.name for f in fields(BenchRow) if f.name not in ("extra", "providers")] + ["providers"]


def to_csv(rows: Sequence[BenchRow]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS)
    w.writeheader()
    for r in rows:
        d = asdict(r)
        d.pop("extra")
        d["providers"] = ";".join(r.providers)
        w.writerow(d)
    return buf.getvalue()


def from_csv(text: str) -> list[BenchRow]:
    """Rows back from `to_csv` (types restored from the dataclass's fields)."""
    types = {f.name: str(f.type) for f in fields(BenchRow)}
    rows = []
    for d in csv.DictReader(io.StringIO(text)):
        kw: dict[str, Any] = {}
        for k, v in d.items():
            t = types.get(k, "str")
            if k == "providers":
                kw[k] = [p for p in v.split(";") if p]
            elif v == "":
                kw[k] = None if "None" in t else ("" if t.startswith("str") else None)
            elif t.startswith("bool"):
                kw[k] = v == "True"
            elif t.startswith("int"):
                kw[k] = int(v)
            elif t.startswith("float"):
                kw[k] = float(v)
            else:
                kw[k] = v
        rows.append(BenchRow.from_dict(kw))
    return rows
