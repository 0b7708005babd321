"""Plain `session.run` against edgekit's IO binding and IO binding + CUDA graph, on a fixed-shape
file and its dynamic-batch twin, in one process, interleaved call by call
(`runtime.timing.interleaved`), so that drift and a neighbour's load fall on all of them alike. Part
of `bench/gpu_check.sh`.

    python bench/gpu_modes.py precisions SRC.onnx --calib-shape 1x224x224x3     # SRC_fp16, SRC_int8
    python bench/gpu_modes.py variants SRC_DIR DIR --batch 32
    python bench/gpu_modes.py time DIR --batch 1 [--device cuda] [--budget 3] --out X.json
    python bench/gpu_modes.py summary OUT_DIR

`precisions` makes the fp16 and int8 (QDQ) files of an fp32 ONNX file with edgekit's own ONNX
exporter functions (`to_fp16`, `quantize_int8`: what `edgekit export --quantize fp16|int8` writes),
which need no TensorFlow, calibrated on random inputs.

`variants` writes, for each model of SRC_DIR and each precision (`NAME.onnx`, `NAME_fp16.onnx`,
`NAME_int8.onnx`), the same graph with its batch left free (`NAME_dyn[_P].onnx`) and fixed at
--batch (`NAME_b32[_P].onnx`). A tf2onnx MobileNetV2 has no shape constant that depends on the
batch, so its batch-1 file serves. An Ultralytics YOLO export with a fixed shape has its Reshape
sizes baked in: its free-batch twin comes from the export made with `dynamic=True`
(`yolov8n-dyn[_P].onnx`, batch, height and width free, sizes computed from the input's shape), its
height and width declared as those of `yolov8n-SIZE.onnx`; the fixed batch-32 file is that export
with every input dimension declared.

`time` measures, for each batch-1 file of DIR and its twins, each call taking the same host array and
giving back host arrays:
- plain:   `onnxruntime.InferenceSession(FILE).run(None, feeds)`, what a user writes by hand (the
           input copied to the device and the outputs back on every call);
- binding: edgekit's session with the CUDA graph turned off: inputs and outputs bound on the device
           once and the input updated in place;
- graph:   edgekit's session as `edgekit run` and `bench` open it: the binding plus a CUDA graph,
           the dynamic-batch file with its batch fixed for the session.
on the fixed file (batch 1: `NAME.onnx`; --batch N: `NAME_bN.onnx`) and the dynamic-batch one
(`NAME_dyn.onnx`), six callables interleaved, for about --budget seconds per model and precision.
What each really ran on (providers, io_binding, cuda_graph, batch_fixed) is recorded, never what was
asked for, and every output is checked against plain's on the fixed file. On a machine with no GPU
the modes are edgekit's CPU path and plain `run` (`io_binding` false): a dry run of the script.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PRECISIONS = ("", "_fp16", "_int8")
GOAL_DYNAMIC = 1.10  # the goal: the dynamic-batch file within 10% of the fixed one


def with_dims(src: Path, dst: Path, batch: int | None, size: tuple[int, int] | None = None) -> Path:
    """`src` with the first dimension of its graph inputs and outputs set to `batch` (None: free, by
    the name `batch`) and, with `size`, the inputs' last two dimensions (NCHW height, width) too."""
    import onnx

    model = onnx.load(str(src))
    for value in [*model.graph.input, *model.graph.output]:
        dim = value.type.tensor_type.shape.dim[0]
        if batch is None:
            dim.dim_param = "batch"
        else:
            dim.dim_value = batch
    if size is not None:
        for value in model.graph.input:
            for dim, side in zip(value.type.tensor_type.shape.dim[2:4], size, strict=True):
                dim.dim_value = side
    del model.graph.value_info[:]  # shapes inferred for another batch would contradict the new one
    # not onnx.checker: an fp16 export (onnxruntime's converter, keep_io_types) lists its input Casts
    # after the nodes that read them, which onnxruntime takes and the checker refuses
    onnx.save(model, str(dst))
    return dst


def precisions(src: Path, calib_shape: tuple[int, ...], samples: int = 8) -> list[Path]:
    """SRC_fp16.onnx and SRC_int8.onnx beside SRC, as edgekit's exporter writes them."""
    import onnx

    from edgekit.export.formats.onnx import quantize_int8, to_fp16

    model = onnx.load(str(src))
    name = model.graph.input[0].name
    half = src.with_name(f"{src.stem}_fp16.onnx")
    half.write_bytes(to_fp16(model))
    calib = np.random.default_rng(0).uniform(0, 1, (samples, *calib_shape[1:])).astype(np.float32)
    int8 = src.with_name(f"{src.stem}_int8.onnx")
    int8.write_bytes(quantize_int8(src.read_bytes(), name, calib))
    return [half, int8]


def variants(sources: Path, folder: Path, batch: int) -> list[Path]:
    """The dynamic-batch and fixed-batch twins of every batch-1 file in `sources` (see the module)."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for src in sorted(sources.glob("*.onnx")):
        stem, p = re.fullmatch(r"(.+?)(_fp16|_int8)?", src.stem).groups()
        p = p or ""
        if stem.endswith("-dyn"):  # the free export, used below for its sized twins
            continue
        if sources.resolve() != folder.resolve():
            made.append(Path(shutil.copy2(src, folder / src.name)))
        free = sources / f"{stem.split('-')[0]}-dyn{p}.onnx"
        if free.exists():  # an Ultralytics export: the twins come from the dynamic=True export
            import onnx

            h, w = (d.dim_value for d in onnx.load(str(src)).graph.input[0].type.tensor_type.shape.dim[2:4])
            made.append(with_dims(free, folder / f"{stem}_dyn{p}.onnx", None, (h, w)))
            made.append(with_dims(free, folder / f"{stem}_b{batch}{p}.onnx", batch, (h, w)))
        else:
            made.append(with_dims(src, folder / f"{stem}_dyn{p}.onnx", None))
            made.append(with_dims(src, folder / f"{stem}_b{batch}{p}.onnx", batch))
    return made


def pairs(folder: Path, batch: int) -> list[tuple[str, str, Path, Path]]:
    """(model, precision, fixed file, dynamic-batch file) for each model and precision in `folder`."""
    out = []
    for free in sorted(folder.glob("*_dyn*.onnx")):
        stem, p = re.fullmatch(r"(.+?)_dyn(_fp16|_int8)?", free.stem).groups()
        fixed = folder / (f"{stem}{p or ''}.onnx" if batch == 1 else f"{stem}_b{batch}{p or ''}.onnx")
        if fixed.exists():
            out.append((stem, (p or "_fp32").lstrip("_"), fixed, free))
    return out


def time_pair(fixed: Path, free: Path, batch: int, device: str, budget: float, min_runs: int = 20) -> dict:
    """The six modes on one model and precision (see the module), interleaved."""
    import time

    import onnxruntime as ort

    from edgekit.runtime.backends import BACKENDS, SessionOptions
    from edgekit.runtime.files import ModelFile
    from edgekit.runtime.nvidia import preload_cuda
    from edgekit.runtime.timing import interleaved, summarize

    providers = ["CPUExecutionProvider"]
    if device == "cuda":
        preload_cuda(ort)
        providers = ["CUDAExecutionProvider", *providers]
    backend = BACKENDS.get("onnxruntime")
    sessions: dict[str, object] = {}
    ran: dict[str, dict] = {}
    for kind, path in (("fixed", fixed), ("dyn", free)):
        sessions[f"plain-{kind}"] = ort.InferenceSession(str(path), providers=providers)
        ran[f"plain-{kind}"] = {"providers": sessions[f"plain-{kind}"].get_providers(), "io_binding": False}
        for mode, graph in (("binding", False), ("graph", True)):
            # binding on the dynamic file: its batch left free, as before edgekit fixed it per session
            fixed_batch = batch if kind == "dyn" and graph else None
            options = SessionOptions(device=device, batch=fixed_batch, cuda_graph=graph)
            sessions[f"{mode}-{kind}"] = backend.open(ModelFile.open(path), options)
    inp = sessions["plain-fixed"].get_inputs()[0]
    x = np.random.default_rng(0).uniform(0, 1, [d if isinstance(d, int) else batch for d in inp.shape])
    x = x.astype(np.float32)
    if x.shape[0] != batch:
        raise SystemExit(f"{fixed.name} takes batch {x.shape[0]}, not {batch}: make it with `variants`")
    calls = {}
    for label, s in sessions.items():
        if label.startswith("plain"):
            name = s.get_inputs()[0].name
            calls[label] = lambda s=s, name=name: s.run(None, {name: x})
        else:
            calls[label] = lambda s=s: s.run([x])
    want = calls["plain-fixed"]()[0]
    agree = {}
    for label, call in calls.items():
        for _ in range(3):  # a CUDA graph is captured on an early run and replayed after
            got = call()[0]
        agree[label] = float(np.abs(np.asarray(got, np.float32) - want).max())
    for label, s in sessions.items():
        if not label.startswith("plain"):
            ran[label] = s.execution
    t0 = time.perf_counter()
    for call in calls.values():
        call()
    one = (time.perf_counter() - t0) / len(calls)
    runs = int(min(2000, max(min_runs, budget / (len(calls) * max(one, 1e-6)))))
    times = interleaved(calls, runs, warmup=min(5, min_runs))
    for s in sessions.values():
        if hasattr(s, "close"):
            s.close()
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
            "max_abs_diff_vs_plain_fixed": agree[label],
        }
    base = modes["plain-fixed"]["p50_ms"]
    for m in modes.values():
        m["speedup_vs_plain_fixed"] = base / m["p50_ms"]
    return {"fixed": fixed.name, "dynamic": free.name, "runs": runs, "modes": modes}


def time_all(folder: Path, batch: int, device: str, budget: float, min_runs: int = 20) -> dict:
    from edgekit.runtime import hostinfo

    found = pairs(folder, batch)
    if not found:
        raise SystemExit(
            f"no NAME_dyn*.onnx with its fixed twin for batch {batch} in {folder}: run `variants`"
        )
    results = []
    for model, precision, fixed, free in found:
        try:
            doc = time_pair(fixed, free, batch, device, budget, min_runs)
        except Exception as e:  # one model that fails (memory, a refusal) leaves the others measured
            doc = {"fixed": fixed.name, "dynamic": free.name, "error": f"{type(e).__name__}: {e}"}
        results.append({"model": model, "precision": precision, **doc})
        print(line(results[-1], batch), flush=True)
    return {
        "batch": batch,
        "device": device,
        "host": hostinfo.host(),
        "results": results,
        "note": "six callables interleaved call by call in one process per model and precision; "
        "speed-ups are plain-fixed p50 / the mode's p50",
    }


def line(r: dict, batch: int) -> str:
    if "error" in r:
        return f"{r['model']} {r['precision']} batch {batch}: failed ({r['error']})"
    m = r["modes"]
    cells = " ".join(f"{k} {v['p50_ms']:.4g}" for k, v in m.items())
    ratio = m["graph-dyn"]["p50_ms"] / m["graph-fixed"]["p50_ms"]
    graph = m["graph-dyn"]["ran"].get("cuda_graph")
    return f"{r['model']} {r['precision']} batch {batch}: {cells} ms; dyn/fixed with graph {ratio:.2f}x (graph={graph})"


def summary(folder: Path) -> str:
    """One line per measured row of the bench-*.json, per model and precision of the modes-*.json,
    and the issue's goals: the dynamic-batch file within 10% of the fixed one, int8 at most fp32's
    time (or the verdict's reason)."""
    lines = []
    for path in sorted(folder.glob("bench-*.json")):
        doc = json.loads(path.read_text())
        for r in doc["results"]:
            ran = (r.get("extra") or {}).get("execution") or {}
            what = (
                f"failed: {r['error']}"
                if r.get("error")
                else f"p50 {r['p50_ms']:.4f} ms  {r['throughput']:.0f} items/s  on {','.join(r['providers'][:1])} "
                f"binding={ran.get('io_binding')} graph={ran.get('cuda_graph')} batch_fixed={ran.get('batch_fixed')}"
            )
            lines.append(f"{path.name}: {Path(r['model']).name} {r['device']} batch {r['batch']}: {what}")
        lines.extend(f"{path.name} verdict: {v}" for v in doc.get("verdict", []))
    for path in sorted(folder.glob("modes-*.json")):
        doc = json.loads(path.read_text())
        fp32: dict[str, float] = {}
        for r in doc["results"]:
            lines.append(f"{path.name}: {line(r, doc['batch'])}")
            if "error" in r:
                continue
            ratio = r["modes"]["graph-dyn"]["p50_ms"] / r["modes"]["graph-fixed"]["p50_ms"]
            mark = "meets" if ratio <= GOAL_DYNAMIC else "MISSES"
            lines.append(f"  goal dynamic within 10% of fixed: {ratio:.3f}x, {mark}")
            best = min(m["p50_ms"] for k, m in r["modes"].items() if k.startswith("graph"))
            if r["precision"] == "fp32":
                fp32[r["model"]] = best
            elif r["precision"] == "int8" and r["model"] in fp32:
                ratio = best / fp32[r["model"]]
                mark = "meets" if ratio <= 1.0 else "slower: the bench verdict says why"
                lines.append(f"  goal int8 at most fp32's time: {ratio:.3f}x, {mark}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    pr = sub.add_parser("precisions", help="SRC_fp16.onnx and SRC_int8.onnx beside an fp32 file")
    pr.add_argument("model", type=Path)
    pr.add_argument("--calib-shape", required=True, help="one input's shape, 1x224x224x3")
    v = sub.add_parser("variants", help="dynamic-batch and fixed-batch twins of batch-1 files")
    v.add_argument("sources", type=Path)
    v.add_argument("folder", type=Path)
    v.add_argument("--batch", type=int, default=32)
    t = sub.add_parser("time", help="plain run vs IO binding vs IO binding + CUDA graph, fixed and dynamic")
    t.add_argument("folder", type=Path)
    t.add_argument("--batch", type=int, default=1)
    t.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    t.add_argument("--budget", type=float, default=3.0, help="seconds of timed calls per model and precision")
    t.add_argument("--min-runs", type=int, default=20, help="timed calls of each mode at least")
    t.add_argument("--out", type=Path, required=True)
    sm = sub.add_parser("summary", help="the figures of a gpu_check.sh output folder, one line each")
    sm.add_argument("folder", type=Path)
    args = ap.parse_args()
    if args.cmd == "summary":
        print(summary(args.folder))
        return
    if args.cmd == "precisions":
        shape = tuple(int(d) for d in args.calib_shape.split("x"))
        for path in precisions(args.model, shape):
            print(path)
        return
    if args.cmd == "variants":
        for path in variants(args.sources, args.folder, args.batch):
            print(path)
        return
    doc = time_all(args.folder, args.batch, args.device, args.budget, args.min_runs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1))
    cvs = [m["cv"] for r in doc["results"] if "modes" in r for m in r["modes"].values()]
    print(f"mean CV {100 * statistics.fmean(cvs or [0]):.1f}%; saved {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
