"""Outputs of model files on this machine, saved as a reference or compared with one.

    python parity.py save REF.npz MODEL...     # on x86: inputs, model tensors and raw outputs
    python parity.py check REF.npz MODEL...    # on arm64: the same, compared per file

The inputs go into REF.npz, so the device needs no data set: 200 held-out MNIST digits (with their
labels) for the MNIST files, and a generated picture for BlazeFace. Two comparisons per file:

- engine: the x86 model input tensors (after the runtime's preprocessing) fed to this machine's
  interpreter: only the backend's kernels differ. This one is held to the file's bar: float files
  (fp32/fp16) agree to 1e-4 of the output's range; integer and dynamic-range files (whose kernels
  round differently per CPU: x86 u8s8 vs ARM s8s8 in onnxruntime, for one) pick the same top-1
  class for at least 99% of the digits and lose at most 1 accuracy point, as the exporter's int8
  bar; their max difference is reported.
- path: the raw inputs through this machine's preprocessing (OpenCV's resize) too; reported only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

FLOAT_BAR = 1e-4
AGREEMENT = 0.99
MAX_DROP = 0.01


def _inputs(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    if "face_detection" in path.name:
        import cv2

        rng = np.random.default_rng(0)
        img = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
        cv2.ellipse(img, (128, 120), (60, 80), 0, 0, 360, (120, 160, 220), -1)  # a face-coloured oval
        for x in (105, 151):
            cv2.circle(img, (x, 100), 8, (30, 30, 30), -1)  # eyes
        return img[None], None
    from edgekit.runtime.datasets import load_dataset

    held = load_dataset("mnist", "shipped").heldout
    return held.x[:200], np.asarray(held.y[:200])


def _stack(runs: list[list[np.ndarray]]) -> list[np.ndarray]:
    return [np.stack([r[k] for r in runs]) for k in range(len(runs[0]))]


def _run(path: Path, raw: np.ndarray, feeds: list[np.ndarray] | None = None):
    """(model input tensors, outputs of the whole path, outputs for the given feeds)."""
    from edgekit.runtime.predictor import Predictor

    with Predictor(path) as p:
        tensors = [p.task.preprocess(x) for x in raw]
        path_out = _stack([p.session.run(t) for t in tensors])
        engine_out = None
        if feeds is not None:
            engine_out = _stack([p.session.run([f[i] for f in feeds]) for i in range(len(raw))])
    return _stack(tensors), path_out, engine_out


def _quantized(path: Path) -> bool:
    return any(q in path.stem for q in ("int8", "dynamic", "uint8"))


def save(ref: Path, models: list[Path]) -> None:
    arrays = {}
    for m in models:
        raw, labels = _inputs(m)
        tensors, outs, _ = _run(m, raw)
        arrays[f"{m.name}/raw"] = raw
        if labels is not None:
            arrays[f"{m.name}/labels"] = labels
        for k, t in enumerate(tensors):
            arrays[f"{m.name}/in{k}"] = t
        for k, y in enumerate(outs):
            arrays[f"{m.name}/out{k}"] = y
    np.savez_compressed(ref, **arrays)
    print(f"saved reference outputs of {len(models)} files to {ref}")


def _diff(a: list[np.ndarray], b: list[np.ndarray]) -> tuple[list[float], float]:
    diffs = [float(np.max(np.abs(x.astype(np.float64) - y.astype(np.float64)))) for x, y in zip(a, b)]
    rel = max(d / max(1.0, float(np.max(np.abs(y.astype(np.float64))))) for d, y in zip(diffs, b))
    return diffs, rel


def check(ref: Path, models: list[Path]) -> int:
    data = np.load(ref)
    failed = 0
    for m in models:
        n_in = len([k for k in data.files if k.startswith(f"{m.name}/in")])
        n_out = len([k for k in data.files if k.startswith(f"{m.name}/out")])
        feeds = [data[f"{m.name}/in{k}"] for k in range(n_in)]
        want = [data[f"{m.name}/out{k}"] for k in range(n_out)]
        _, path_out, engine_out = _run(m, data[f"{m.name}/raw"], feeds)
        diffs, rel = _diff(engine_out, want)
        path_diffs, _ = _diff(path_out, want)
        line = {"file": m.name, "engine_max_abs_diff": diffs, "engine_relative_max_diff": rel}
        line["path_max_abs_diff"] = path_diffs
        if _quantized(m) and f"{m.name}/labels" in data.files:
            labels = data[f"{m.name}/labels"]
            top_here = engine_out[0].reshape(len(labels), -1).argmax(1)
            top_x86 = want[0].reshape(len(labels), -1).argmax(1)
            agree = float(np.mean(top_here == top_x86))
            drop = float(np.mean(top_x86 == labels) - np.mean(top_here == labels))
            ok = agree >= AGREEMENT and drop <= MAX_DROP
            line |= {"top1_agreement": agree, "accuracy_drop": drop}
            line["bar"] = f"top-1 agreement >= {AGREEMENT:g}, accuracy drop <= {MAX_DROP * 100:g} point"
        else:
            ok = rel <= FLOAT_BAR
            line["bar"] = f"max diff <= {FLOAT_BAR:g} of the output range"
        line["ok"] = ok
        failed += not ok
        print(json.dumps(line))
    print(f"parity: {len(models) - failed} of {len(models)} files within their bar")
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[1] not in ("save", "check"):
        sys.exit(__doc__)
    ref_path, model_paths = Path(sys.argv[2]), [Path(p) for p in sys.argv[3:]]
    if sys.argv[1] == "save":
        save(ref_path, model_paths)
    else:
        sys.exit(check(ref_path, model_paths))
