"""Each benchmark row in a fresh process: `python -m edgekit.benchmark.worker` reads the row's spec
as JSON on stdin and writes `{"row": ...}` or `{"error": "one sentence"}` as the last line of
stdout. A process per row makes the peak memory that row's own and keeps one row from warming the
caches, allocators or thread pools of the next."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict

from edgekit.benchmark.measure import RowSpec
from edgekit.benchmark.plan import Planned, failed_row
from edgekit.benchmark.results import BenchRow
from edgekit.deps import module_command


def run_in_child(spec: RowSpec, timeout: float) -> BenchRow:
    """Measure one row in a fresh interpreter; a crash, a hang or a refusal becomes the row's reason.
    Ctrl-C stops the child with the parent (it is in the same process group) and propagates."""
    planned = Planned(spec.model, spec.backend, spec.device, spec.threads, spec.batch)
    cmd = module_command("edgekit.benchmark.worker")
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "TF_CPP_MIN_LOG_LEVEL": "3"}
    try:
        proc = subprocess.run(
            cmd, input=json.dumps(asdict(spec)), capture_output=True, text=True, timeout=timeout, env=env
        )
    except subprocess.TimeoutExpired:
        return failed_row(planned, f"did not finish in {timeout:.0f} s")
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    try:
        doc = json.loads(last)
    except json.JSONDecodeError:
        doc = None
    if isinstance(doc, dict) and "row" in doc:
        return BenchRow.from_dict(doc["row"])
    why = doc.get("error") if isinstance(doc, dict) else None
    if not why:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        why = f"the process ended with code {proc.returncode}" + (f": {lines[-1]}" if lines else "")
    return failed_row(planned, why)


def main() -> int:
    from edgekit.benchmark.measure import measure_row
    from edgekit.errors import EdgekitError, first_line

    try:
        spec = RowSpec(**json.loads(sys.stdin.read()))
        row = measure_row(spec)
    except EdgekitError as e:
        print(json.dumps({"error": str(e)}))
        return 1
    except Exception as e:  # a library's own error on a file it cannot run: the row's reason
        print(json.dumps({"error": f"{type(e).__name__}: {first_line(e)}"}))
        return 1
    print(json.dumps({"row": asdict(row)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
