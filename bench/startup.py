"""Start-up: `edgekit run face_detection_short_range.tflite --source photo.png` against a 15-line
script that does the same with the TFLite interpreter and OpenCV, as whole processes.

Runs are paired (edgekit then the script, the order alternating) so that a busy machine slows both
alike; the figure is the median of the per-pair ratios of wall time (and of CPU time, which a busy
machine disturbs less), with the medians of each side's wall and CPU time. `--imports N` adds where
edgekit's import time goes: `python -X importtime` of the same run N times, each module's own time
summed by top-level package (the least of the N runs, and the median). Modules that a registry
imports through `importlib.import_module` are not in Python's importtime report, so they are in no
row. Prints tables; `--json FILE` saves them. A script that prints, never asserts.

    python bench/startup.py --runs 30 --imports 10 --json bench/results/startup.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "runtime" / "assets" / "face_detection_short_range.tflite"

SCRIPT = """
import sys
import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter

interpreter = Interpreter(model_path=sys.argv[1])
interpreter.allocate_tensors()
inp = interpreter.get_input_details()[0]
image = cv2.imread(sys.argv[2])
x = cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), (128, 128)).astype(np.float32) / 127.5 - 1
interpreter.set_tensor(inp["index"], x[None])
interpreter.invoke()
scores = interpreter.get_tensor(interpreter.get_output_details()[1]["index"])
print(f"best score {1 / (1 + np.exp(-scores.max())):.3f}")
"""


# as installed packages run: with their bytecode cached (a shell that sets PYTHONDONTWRITEBYTECODE
# would otherwise charge edgekit ~0.3 s of compiling its modules on every start, and not the script)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
# and from a folder outside the checkout, as the `edgekit` command starts: `-m` puts the working folder
# first on sys.path, and the checkout's edgekit/ is not the installed package (pyproject maps runtime/
# into that)
OUTSIDE = tempfile.gettempdir()


def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall, CPU of the child) seconds of one whole process."""
    before = os.times()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=OUTSIDE)
    wall = time.perf_counter() - t0
    after = os.times()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return wall, cpu


GROUPS = ("edgekit", "typer", "numpy", "cv2", "ai_edge_litert")


def import_times(cmd: list[str], runs: int) -> dict[str, dict[str, float]]:
    """ms of import time by package: each module's own time goes to the nearest of GROUPS among it
    and the modules that imported it (the standard library that typer pulls in is typer's), else to
    "other" (Python's own start-up, site). The least and the median of `runs`."""
    per_run: list[dict[str, float]] = []
    for _ in range(runs):
        proc = subprocess.run(
            [cmd[0], "-X", "importtime", *cmd[1:]], capture_output=True, text=True, env=ENV, cwd=OUTSIDE
        )
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
        rows = []  # (module, depth, own µs), children listed before the module that imported them
        for line in proc.stderr.splitlines():
            parts = line.split("|")
            if line.startswith("import time:") and len(parts) == 3 and parts[0].split()[-1].isdigit():
                name = parts[2].rstrip()
                rows.append((name.strip(), (len(name) - len(name.lstrip())) // 2, int(parts[0].split()[-1])))
        sums = dict.fromkeys((*GROUPS, "other"), 0.0)
        owners: list[tuple[int, str | None]] = []  # open ancestors: (depth, group), deepest last
        for name, depth, own in reversed(rows):  # parents first
            while owners and owners[-1][0] >= depth:
                owners.pop()
            top = name.split(".")[0]
            group = top if top in GROUPS else next((g for _, g in reversed(owners) if g), None)
            owners.append((depth, group))
            sums[group or "other"] += own / 1000
        sums["(all)"] = sum(sums.values())
        per_run.append(sums)
    return {
        n: {
            "min_ms": round(min(r[n] for r in per_run), 2),
            "median_ms": round(statistics.median(r[n] for r in per_run), 2),
        }
        for n in per_run[0]
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="pairs of runs")
    parser.add_argument("--imports", type=int, default=0, help="runs of -X importtime (0: none)")
    parser.add_argument("--json", type=Path, help="save the figures here")
    args = parser.parse_args()
    import cv2
    import numpy as np

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp, "photo.png")
        rng = np.random.default_rng(0)
        cv2.imwrite(str(photo), cv2.resize(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), (640, 480)))
        script = Path(tmp, "script.py")
        script.write_text(SCRIPT)
        edgekit = [sys.executable, "-m", "edgekit.cli", "run", str(MODEL), "--source", str(photo)]
        plain = [sys.executable, str(script), str(MODEL), str(photo)]
        timed(edgekit), timed(plain)  # warm the file cache
        rows: dict[str, list[tuple[float, float]]] = {"edgekit": [], "script": []}
        for i in range(args.runs):
            order = [("edgekit", edgekit), ("script", plain)]
            for name, cmd in order if i % 2 == 0 else order[::-1]:
                rows[name].append(timed(cmd))
        imports = import_times(edgekit, args.imports) if args.imports else {}
    pairs = list(zip(rows["edgekit"], rows["script"], strict=True))
    doc = {
        "runs": args.runs,
        "ratio_wall_median": statistics.median(e[0] / s[0] for e, s in pairs),
        "ratio_cpu_median": statistics.median(e[1] / s[1] for e, s in pairs),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        **{
            f"{name}_{what}_median_s": statistics.median(r[k] for r in rs)
            for name, rs in rows.items()
            for k, what in ((0, "wall"), (1, "cpu"))
        },
    }
    print(f"{'':10}{'wall s':>10}{'cpu s':>10}")
    for name in rows:
        print(f"{name:10}{doc[f'{name}_wall_median_s']:>10.3f}{doc[f'{name}_cpu_median_s']:>10.3f}")
    print(f"edgekit / script wall time, median of {args.runs} paired runs: {doc['ratio_wall_median']:.2f}x")
    print(f"edgekit / script CPU time, median of {args.runs} paired runs: {doc['ratio_cpu_median']:.2f}x")
    print(f"load average before {load_before[0]:.2f}, after {doc['load_average_after'][0]:.2f}")
    if imports:
        doc["imports_ms"] = imports
        print(f"\nedgekit's import time by package, ms ({args.imports} runs of -X importtime)")
        print(f"{'':16}{'least':>10}{'median':>10}")
        for name, t in imports.items():
            print(f"{name:16}{t['min_ms']:>10.1f}{t['median_ms']:>10.1f}")
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
