"""Start-up: `edgekit run face_detection_short_range.tflite --source photo.png` against a 15-line
script that does the same with the TFLite interpreter and OpenCV, as whole processes.

Runs are paired (edgekit then the script, the order alternating) so that a busy machine slows both
alike; the figure is the median of the per-pair ratios of wall time, with the medians of each side's
wall and CPU time. Prints a table; `--json FILE` saves it. A script that prints, never asserts.

    python bench/startup.py --runs 30
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


def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall, CPU of the child) seconds of one whole process."""
    before = os.times()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
    wall = time.perf_counter() - t0
    after = os.times()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="pairs of runs")
    parser.add_argument("--json", type=Path, help="save the figures here")
    args = parser.parse_args()
    import cv2
    import numpy as np

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
    ratios = [e[0] / s[0] for e, s in zip(rows["edgekit"], rows["script"], strict=True)]
    doc = {
        "runs": args.runs,
        "ratio_wall_median": statistics.median(ratios),
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
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
