"""Plain `session.run` against edgekit's IO binding and IO binding + CUDA graph, on one model, in one
process, interleaved call by call (`runtime.timing.interleaved`), so that drift and a neighbour's
load fall on the three alike. Part of `bench/gpu_check.sh`.

    python bench/gpu_modes.py variants MODEL.onnx DIR --batch 32
    python bench/gpu_modes.py time FIXED.onnx DYNAMIC.onnx --batch 1 [--device cuda] [--runs 2000] --out X.json
    python bench/gpu_modes.py summary OUT_DIR

`variants` writes MODEL's graph with its first (batch) dimension fixed at --batch (`_bN.onnx`) and
left open (`_dyn.onnx`); a tf2onnx MobileNetV2 has no shape constant that depends on the batch.

`time` measures, each call taking the same host array and giving back host arrays:
- plain:   `onnxruntime.InferenceSession(FIXED).run(None, feeds)`, what a user writes by hand (the
           input copied to the device and the outputs back on every call);
- binding: edgekit's session on DYNAMIC: inputs and outputs bound on the device once and the input
           updated in place (no CUDA graph: its shapes are not fixed);
- graph:   edgekit's session on FIXED: the binding plus a CUDA graph replayed on every call.
What each mode really ran on (providers, io_binding, cuda_graph) is recorded, never what was asked
for, and the outputs of binding and graph are checked against plain's. On a machine with no GPU the
three are edgekit's CPU path and plain `run` (`io_binding` false): a dry run of the script.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def with_batch(src: Path, dst: Path, batch: int | None) -> Path:
    """`src` with the first dimension of its graph inputs and outputs set to `batch` (None: open)."""
    import onnx

    model = onnx.load(str(src))
    for value in [*model.graph.input, *model.graph.output]:
        dim = value.type.tensor_type.shape.dim[0]
        if batch is None:
            dim.dim_param = "batch"
        else:
            dim.dim_value = batch
    del model.graph.value_info[:]  # shapes inferred for batch 1 would contradict the new batch
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return dst


def variants(src: Path, folder: Path, batch: int) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return {
        "fixed": with_batch(src, folder / f"{src.stem}_b{batch}.onnx", batch),
        "dynamic": with_batch(src, folder / f"{src.stem}_dyn.onnx", None),
    }


def time_modes(fixed: Path, dynamic: Path, batch: int, device: str, runs: int, warmup: int) -> dict:
    import onnxruntime as ort

    from edgekit.runtime import hostinfo
    from edgekit.runtime.backends import open_model
    from edgekit.runtime.backends.onnxruntime import preload_cuda
    from edgekit.runtime.timing import interleaved, summarize

    providers = ["CPUExecutionProvider"]
    if device == "cuda":
        preload_cuda(ort)
        providers = ["CUDAExecutionProvider", *providers]
    plain = ort.InferenceSession(str(fixed), providers=providers)
    name = plain.get_inputs()[0].name
    shape = [batch if not isinstance(d, int) else d for d in plain.get_inputs()[0].shape]
    if shape[0] != batch:
        raise SystemExit(f"{fixed.name} takes batch {shape[0]}, not {batch}: make it with `variants`")
    x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    with open_model(dynamic, device=device) as bound, open_model(fixed, device=device) as graph:
        want = plain.run(None, {name: x})[0]
        agree = {}
        for label, session in (("binding", bound), ("graph", graph)):
            for _ in range(3):  # a CUDA graph is captured on an early run and replayed after
                got = session.run([x])[0]
            agree[label] = float(np.abs(got - want).max())
        times = interleaved(
            {
                "plain": lambda: plain.run(None, {name: x}),
                "binding": lambda: bound.run([x]),
                "graph": lambda: graph.run([x]),
            },
            runs,
            warmup,
        )
        ran = {
            "plain": {"providers": plain.get_providers(), "io_binding": False, "cuda_graph": False},
            "binding": bound.execution,
            "graph": graph.execution,
        }
    modes = {}
    for label, seconds in times.items():
        lat = summarize(seconds)
        modes[label] = {
            "p50_ms": lat.p50_ms,
            "p90_ms": lat.p90_ms,
            "mean_ms": lat.mean_ms,
            "cv": lat.cv,
            "items_per_s": batch * 1e3 / lat.mean_ms,
            "ran": ran[label],
            "max_abs_diff_vs_plain": agree.get(label, 0.0),
        }
    base = modes["plain"]["p50_ms"]
    for m in modes.values():
        m["speedup_vs_plain"] = base / m["p50_ms"]
    return {
        "model": fixed.name,
        "dynamic_model": dynamic.name,
        "batch": batch,
        "device": device,
        "runs": runs,
        "host": hostinfo.host(),
        "modes": modes,
        "note": "interleaved call by call in one process; ratios are plain p50 / the mode's p50",
    }


def summary(folder: Path) -> str:
    """One line per measured row of the bench-*.json and per mode of the modes-*.json in `folder`."""
    lines = []
    for path in sorted(folder.glob("bench-*.json")):
        doc = json.loads(path.read_text())
        for r in doc["results"]:
            ran = (r.get("extra") or {}).get("execution") or {}
            what = (
                f"failed: {r['error']}"
                if r.get("error")
                else f"p50 {r['p50_ms']:.4f} ms  {r['throughput']:.0f} items/s  on {','.join(r['providers'][:1])} "
                f"binding={ran.get('io_binding')} graph={ran.get('cuda_graph')}"
            )
            lines.append(f"{path.name}: {Path(r['model']).name} {r['device']} batch {r['batch']}: {what}")
    for path in sorted(folder.glob("modes-*.json")):
        doc = json.loads(path.read_text())
        for label, m in doc["modes"].items():
            lines.append(
                f"{path.name}: {doc['model']} batch {doc['batch']} {label}: p50 {m['p50_ms']:.4f} ms, "
                f"{m['speedup_vs_plain']:.2f}x of plain, on {m['ran']['providers'][0]} "
                f"binding={m['ran']['io_binding']} graph={m['ran']['cuda_graph']}"
            )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("variants", help="fixed-batch and open-batch copies of a batch-1 ONNX file")
    v.add_argument("model", type=Path)
    v.add_argument("folder", type=Path)
    v.add_argument("--batch", type=int, default=32)
    t = sub.add_parser("time", help="plain run vs IO binding vs IO binding + CUDA graph")
    t.add_argument("fixed", type=Path)
    t.add_argument("dynamic", type=Path)
    t.add_argument("--batch", type=int, default=1)
    t.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    t.add_argument("--runs", type=int, default=2000)
    t.add_argument("--warmup", type=int, default=50)
    t.add_argument("--out", type=Path, required=True)
    sm = sub.add_parser("summary", help="the figures of a gpu_check.sh output folder, one line each")
    sm.add_argument("folder", type=Path)
    args = ap.parse_args()
    if args.cmd == "summary":
        print(summary(args.folder))
        return
    if args.cmd == "variants":
        for kind, path in variants(args.model, args.folder, args.batch).items():
            print(f"{kind}: {path}")
        return
    doc = time_modes(args.fixed, args.dynamic, args.batch, args.device, args.runs, args.warmup)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1))
    for label, m in doc["modes"].items():
        ran = m["ran"]
        print(
            f"{doc['model']} batch {args.batch} {label:8} p50 {m['p50_ms']:.4f} ms  "
            f"{m['items_per_s']:.0f} items/s  {m['speedup_vs_plain']:.2f}x of plain  "
            f"on {','.join(ran['providers'][:1])} binding={ran['io_binding']} graph={ran['cuda_graph']}  "
            f"max diff {m['max_abs_diff_vs_plain']:.2g}"
        )
    spread = statistics.fmean(m["cv"] for m in doc["modes"].values())
    print(f"mean CV {100 * spread:.1f}%; saved {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
