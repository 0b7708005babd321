"""Outputs of model files on this machine, saved as a reference or compared with one.

    python parity.py save REF.npz MODEL...     # on x86: the inputs and every file's raw outputs
    python parity.py check REF.npz MODEL...    # on arm64: the same inputs, compared per file

The inputs go into REF.npz, so the device needs no data set: 200 held-out MNIST digits for the
MNIST files and a generated picture with a face-like pattern for BlazeFace (fed through the
runtime's own preprocessing, so the whole path is compared). The bar depends on the file's
quantization: float files (fp32/fp16) must agree to 1e-4 relative to the output's range; integer
and dynamic-range files (kernels may round differently on another CPU) must pick the same top-1
class for at least 99% of the digits and stay within 0.02 of the output range.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

FLOAT_BAR = 1e-4
QUANT_BAR = 0.02
AGREEMENT = 0.99


def _inputs(path: Path) -> np.ndarray:
    if "face_detection" in path.name:
        rng = np.random.default_rng(0)
        img = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
        import cv2

        cv2.ellipse(img, (128, 120), (60, 80), 0, 0, 360, (120, 160, 220), -1)  # a face-coloured oval
        for x in (105, 151):
            cv2.circle(img, (x, 100), 8, (30, 30, 30), -1)  # eyes
        return img[None]
    from edgekit.models.datasets import load_dataset

    return load_dataset("mnist", "shipped").heldout.x[:200]


def _outputs(path: Path, inputs: np.ndarray) -> list[np.ndarray]:
    from edgekit.runtime.predictor import Predictor

    with Predictor(path) as p:
        runs = [p.infer(x) for x in inputs]
    return [np.stack([r[k] for r in runs]).astype(np.float64) for k in range(len(runs[0]))]


def _mode(path: Path) -> str:
    from edgekit.runtime.backends import read_card

    card = read_card(path)
    quant = getattr(card, "quantization", None) if card else None
    name = str(getattr(quant, "mode", quant) or "").lower()
    if any(q in name for q in ("int8", "dynamic")) or any(q in path.stem for q in ("int8", "dynamic")):
        return "quantized"
    return "float"


def save(ref: Path, models: list[Path]) -> None:
    arrays = {}
    for m in models:
        x = _inputs(m)
        arrays[f"{m.name}/input"] = x
        for k, y in enumerate(_outputs(m, x)):
            arrays[f"{m.name}/out{k}"] = y
    np.savez_compressed(ref, **arrays)
    print(f"saved reference outputs of {len(models)} files to {ref}")


def check(ref: Path, models: list[Path]) -> int:
    data = np.load(ref)
    report, failed = [], 0
    for m in models:
        x = data[f"{m.name}/input"]
        outs = _outputs(m, x)
        mode = _mode(m)
        worst, line = 0.0, {"file": m.name, "mode": mode}
        for k, y in enumerate(outs):
            r = data[f"{m.name}/out{k}"]
            diff = float(np.max(np.abs(y - r)))
            span = max(1.0, float(np.max(np.abs(r))))
            worst = max(worst, diff / span)
            line[f"max_abs_diff_out{k}"] = diff
        if mode == "float":
            ok = worst <= FLOAT_BAR
            line["bar"] = f"relative max diff <= {FLOAT_BAR:g}"
        else:
            agree = float(
                np.mean(
                    outs[0].reshape(len(x), -1).argmax(1)
                    == data[f"{m.name}/out0"].reshape(len(x), -1).argmax(1)
                )
            )
            ok = worst <= QUANT_BAR and agree >= AGREEMENT
            line["top1_agreement"] = agree
            line["bar"] = f"relative max diff <= {QUANT_BAR:g}, top-1 agreement >= {AGREEMENT:g}"
        line["relative_max_diff"] = worst
        line["ok"] = ok
        failed += not ok
        report.append(line)
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
