"""Every export is validated: the artifact runs through the edgekit runtime on held-out samples
and is compared with the Keras model it came from."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.export.base import Bar
from edgekit.models.datasets import Split
from edgekit.runtime.predictor import Predictor, evaluate_classifier


def parity_report(artifact: Path, reference: np.ndarray, heldout: Split, bar: Bar) -> dict[str, Any]:
    """Compare an artifact with the Keras outputs `reference` (one row per held-out sample)."""
    t0 = time.perf_counter()
    with Predictor(artifact) as predictor:
        got = evaluate_classifier(predictor, heldout.x, heldout.y)
        task = predictor.task
        ref_probs = np.stack([task.probabilities([row[None]]) for row in reference])
        io = {
            name: {"scale": info.quant[0], "zero_point": info.quant[1], "dtype": info.dtype.name}
            for name, info in (
                ("input", predictor.session.inputs[0]),
                ("output", predictor.session.outputs[0]),
            )
            if info.quant is not None
        }
    seconds = time.perf_counter() - t0
    acc_ref = float((ref_probs.argmax(1) == heldout.y).mean())
    max_abs = float(np.abs(got["scores"] - reference.reshape(len(reference), -1)).max())
    drop = (acc_ref - got["accuracy"]) * 100
    failures = []
    if bar.max_abs_diff is not None and max_abs > bar.max_abs_diff:
        failures.append(f"max abs diff {max_abs:.3g} > {bar.max_abs_diff:g}")
    if bar.max_accuracy_drop is not None and drop > bar.max_accuracy_drop:
        failures.append(f"accuracy drop {drop:.2f} points > {bar.max_accuracy_drop:g}")
    return {
        "samples": len(heldout),
        "top1_agreement": float((got["probabilities"].argmax(1) == ref_probs.argmax(1)).mean()),
        "max_abs_diff": max_abs,
        "accuracy_keras": acc_ref,
        "accuracy": got["accuracy"],
        "accuracy_delta_points": round(-drop, 4) + 0.0,  # no "-0.0"
        "bar": bar.to_dict(),
        "passed": not failures,
        "failures": failures,
        "seconds": round(seconds, 3),
        "io_quantization": io,
    }
