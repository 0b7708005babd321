"""What to ship on this host, in plain sentences, from the rows measured: the fastest file that meets
its accuracy bar, the smallest, and why an int8 file is slower than its float twin where it is (from
its per-operator profile and this CPU's flags, as DESIGN.md measured them)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgekit.benchmark.report import metric_cell
from edgekit.benchmark.results import BenchRow
from edgekit.runtime import hostinfo


def family(r: BenchRow) -> str:
    """Files of one model in several formats and quantizations: the card's recipe, else the file name
    without its quantization suffix (mobilenet_int8.tflite and mobilenet.onnx are one family)."""
    if r.recipe:
        return r.recipe
    return re.sub(r"([_-](int8|fp32|fp16|float32|float16|dynamic|quant|float))+$", "", Path(r.model).stem)


def meets_bar(r: BenchRow, rows: Sequence[BenchRow]) -> bool | None:
    """Whether a row's metric is within its card's allowed drop of the best of its family (None: not
    measured here)."""
    if r.metric_value is None:
        return None
    same = [
        x.metric_value
        for x in rows
        if family(x) == family(r) and x.metric == r.metric and x.metric_value is not None
    ]
    bar = r.bar_points if r.bar_points is not None else 1.0
    return (max(same) - r.metric_value) * 100 <= bar + 1e-9


# DESIGN.md's measured facts, said where a profile or the CPU flags point at them
SLOW_INT8_OPS = {
    "ConvInteger": "ONNX Runtime's ConvInteger has no fast kernel: 4.5-6x slower than the fp32 Conv",
    "MatMulInteger": "ONNX Runtime's MatMulInteger is slower than the fp32 MatMul for small matrices",
    "QLinearConv": "ONNX Runtime's QLinearConv is no faster than the fp32 Conv in small CNNs (DESIGN.md: "
    "1.00-1.12x of fp32 on a VNNI Xeon)",
}
DEQUANT_OPS = {"DequantizeLinear", "QuantizeLinear", "DynamicQuantizeLinear", "DEQUANTIZE", "QUANTIZE"}
FLOAT_COMPUTE = {
    "Conv",
    "MatMul",
    "Gemm",
    "FusedConv",
    "FusedMatMul",
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "FULLY_CONNECTED",
    "BATCH_MATMUL",
    "LSTM",
    "UNIDIRECTIONAL_SEQUENCE_LSTM",
}


GPU_DEVICES = ("cuda", "tensorrt")
COPY_OPS = {"MemcpyToHost", "MemcpyFromHost"}
# integer operators the CUDA provider has no kernel for: they run on the CPU, with copies around
# them (ConvInteger: tests/test_gpu.py, checked on an H200)
NO_CUDA_KERNEL = {"ConvInteger"}


def _pct(ops: Sequence[dict[str, Any]]) -> str:
    return f"{100 * sum(o['share'] for o in ops):.0f}%"


def _names(ops: Sequence[dict[str, Any]]) -> str:
    return ", ".join(sorted({o["op"] for o in ops}))


def _file_ops(model: str) -> dict[str, int]:
    """The operators a model file uses, read from the file itself ({} where it cannot be read here:
    a result measured on another machine)."""
    from edgekit.runtime.files import ModelFile

    try:
        report = ModelFile.open(model).ops
    except Exception:
        return {}
    return dict(report.ops) if report is not None else {}


def gpu_int8_reasons(int8: BenchRow, rows: Sequence[BenchRow] = ()) -> list[str]:
    """Why an int8 ONNX file is not faster than its float twin on a GPU, from its profile (where each
    node ran, what the (de)quantize nodes and the copies to and from the host cost) and the file's
    operators. On the CUDA provider a QDQ file computes in float: its CUDA kernels for such a file
    are QuantizeLinear and DequantizeLinear themselves, onnxruntime turns Q/DQ around a Conv into an
    int8 QLinearConv for the CPU provider only, and on the GPU it is TensorRT that builds int8
    kernels; so int8 adds the (de)quantize nodes to the float work (DESIGN.md: 1.7x the fp32 time on
    an H200)."""
    out = []
    ops = (int8.extra.get("profile") or {}).get("ops") or []
    ran = (int8.extra.get("execution") or {}).get("providers") or int8.providers
    tensorrt = bool(ran) and ran[0] == "TensorrtExecutionProvider"
    if ops:
        cpu = [o for o in ops if o.get("provider") == "CPU"]
        if cpu:
            n = sum(o.get("nodes", 0) for o in cpu)
            out.append(
                f"{n} node(s) ran on the CPU ({_names(cpu)}: no kernel in the GPU provider), "
                f"{_pct(cpu)} of the profiled time"
            )
        copies = [o for o in ops if o["op"] in COPY_OPS]
        if copies:
            n = sum(o.get("nodes", 0) for o in copies)
            out.append(
                f"copies between the GPU and the host ({_names(copies)}, {n} a run) take {_pct(copies)}: "
                "each stretch of the graph on the CPU costs a round trip, and rules out the CUDA graph"
            )
        qdq = [o for o in ops if o["op"] in DEQUANT_OPS and o.get("provider") != "CPU"]
        flt = sorted({o["op"] for o in ops if o["op"] in FLOAT_COMPUTE and o.get("provider") != "CPU"})
        if qdq and not tensorrt:
            n = sum(o.get("nodes", 0) for o in qdq)
            out.append(
                f"{n} (de)quantize nodes a run ({_names(qdq)}) take {_pct(qdq)}, on top of "
                f"{', '.join(flt) or 'the float operators'} computing in float: the CUDA provider has no "
                "int8 kernels for a QDQ file (onnxruntime fuses Q/DQ into int8 only on the CPU provider; "
                "on the GPU TensorRT does)"
            )
        out.append(
            "(shares of the host time per node, as onnxruntime's profiler records it: on a GPU a "
            "kernel's launch, a copy's wait)"
        )
    else:
        used = _file_ops(int8.model)
        q, dq = used.get("QuantizeLinear", 0), used.get("DequantizeLinear", 0)
        flt = sorted(op for op in used if op in FLOAT_COMPUTE)
        if (q or dq) and not tensorrt:
            around = ", ".join(flt) or "its operators"
            out.append(
                f"the file is QDQ ({dq} DequantizeLinear, {q} QuantizeLinear around {around}): the CUDA "
                "provider has no int8 kernels for it, so it computes in float and runs every (de)quantize "
                "node on top (onnxruntime fuses Q/DQ into int8 only on the CPU provider; on the GPU "
                "TensorRT does)"
            )
        cpu_ops = sorted(op for op in used if op in NO_CUDA_KERNEL)
        if cpu_ops:
            out.append(f"{', '.join(cpu_ops)} has no CUDA kernel: it runs on the CPU, with copies around it")
        out.append("run with --profile for where each node ran and what it cost")
    if tensorrt:
        out.append("TensorRT ran it and chose its own kernels: its per-layer profile is not read here")
    half = [
        r
        for r in rows
        if r.quantization == "fp16"
        and r.error is None
        and (r.backend, r.device, r.batch, family(r)) == (int8.backend, int8.device, int8.batch, family(int8))
    ]
    if half:
        best = min(half, key=lambda r: r.p50_ms)
        out.append(
            f"the fp16 file {Path(best.model).name} took {best.p50_ms:.4g} ms here, against "
            f"{int8.p50_ms:.4g} ms for int8: on a GPU half precision is the small fast format"
        )
    else:
        out.append(
            "measure an fp16 file beside it (`edgekit export --quantize fp16`): on a GPU half precision is "
            "the small fast format (Ultralytics' users found int8 engines failing on Jetsons, fp16 working)"
        )
    return out


def int8_reasons(int8: BenchRow, host: dict[str, Any], rows: Sequence[BenchRow] = ()) -> list[str]:
    """Why an int8 row is slower than its fp32 twin, from what was measured (its profile) and this
    CPU's flags; on a GPU, from where its nodes ran and what its (de)quantize nodes cost
    (`gpu_int8_reasons`), the CPU's flags having nothing to do with it."""
    if int8.device in GPU_DEVICES:
        return gpu_int8_reasons(int8, rows)
    out = []
    prof = int8.extra.get("profile") or {}
    ops = prof.get("ops") or []
    if int8.backend == "onnxruntime" and ops:
        slow = [o for o in ops if o["op"] in SLOW_INT8_OPS]
        for o in slow:
            out.append(f"{o['op']} takes {100 * o['share']:.0f}% of the time: {SLOW_INT8_OPS[o['op']]}")
        deq = [o for o in ops if o["op"] in DEQUANT_OPS]
        if deq:
            share = sum(o["share"] for o in deq)
            out.append(
                f"(de)quantize ops ({', '.join(sorted({o['op'] for o in deq}))}) take {100 * share:.0f}%"
            )
        flt = [o for o in ops if o["op"] in FLOAT_COMPUTE]
        if flt:
            out.append(f"stayed in float: {', '.join(sorted({o['op'] for o in flt}))}")
    elif ops:  # TFLite: what the delegate took and what computes in float
        missed = sorted({o["op"] for o in ops if not o.get("delegate")})
        flt = sorted({o["op"] for o in ops if o.get("computes") == "float" and o["op"] in FLOAT_COMPUTE})
        deq = sorted({o["op"] for o in ops if o["op"] in DEQUANT_OPS})
        if missed:
            out.append(f"not taken by XNNPACK (TFLite's reference kernels): {', '.join(missed)}")
        if flt:
            out.append(f"stayed in float: {', '.join(flt)}")
        if deq:
            out.append(f"dequantize on the way: {', '.join(deq)}")
    flags = set((host.get("cpu") or {}).get("flags") or [])
    x86 = "avx2" in flags or "avx" in flags
    if x86 and not flags & {"avx512_vnni", "avx_vnni", "amx_int8"}:
        out.append(
            "this CPU has no VNNI (AVX-512 VNNI / AVX-VNNI) or AMX: int8 dot products take several "
            "instructions each (DESIGN.md: int8 TFLite was 1.46x slower than fp32 on an AVX2-only "
            "EPYC, 0.42-0.49x on VNNI CPUs)"
        )
    if not x86 and flags and "asimddp" not in flags:
        out.append("this Arm CPU has no dot-product (asimddp) instructions: int8 kernels gain little")
    if not ops:
        out.append("run with --profile for per-operator times")
    return out


def verdict(rows: Sequence[BenchRow], host: dict[str, Any] | None = None) -> list[str]:
    """What to ship on this host, in plain sentences, from the rows measured."""
    host = host or {}
    ok = [r for r in rows if r.error is None]
    if not ok:
        return ["nothing could be measured"]
    lines = []
    good = [r for r in ok if meets_bar(r, ok) is not False]
    fastest = min(good or ok, key=lambda r: r.p50_ms / r.batch)
    unmeasured = " (accuracy not measured)" if fastest.metric_value is None else ", meets its accuracy bar"
    lines.append(f"fastest: {fastest.label} at {fastest.p50_ms / fastest.batch:.4g} ms per item{unmeasured}")
    smallest = min(ok, key=lambda r: r.size_bytes)
    lines.append(f"smallest: {Path(smallest.model).name} ({smallest.size_bytes / 1024:.1f} KB)")
    for r in ok:
        if meets_bar(r, ok) is False:
            lines.append(f"warning: {r.label} misses its accuracy bar ({metric_cell(r)})")
    # a smaller file that is slower, on the same backend, device, threads and batch
    for a in ok:
        for b in ok:
            same = (a.backend, a.device, a.threads, a.batch, family(a)) == (
                b.backend,
                b.device,
                b.threads,
                b.batch,
                family(b),
            )
            if a is b or not same or a.size_bytes >= b.size_bytes or a.p50_ms <= b.p50_ms * 1.05:
                continue
            lines.append(
                f"warning: {Path(a.model).name} is {a.size_bytes / b.size_bytes:.2f}x the size of "
                f"{Path(b.model).name} but {a.p50_ms / b.p50_ms:.2f}x slower on {a.backend}"
                f" (threads {a.threads or 'default'}, batch {a.batch})"
            )
            if a.quantization in ("int8", "dynamic") and b.quantization in ("fp32", "fp16"):
                lines.extend(f"  why: {why}" for why in int8_reasons(a, host, ok))
    # on a GPU an int8 file that is merely no faster than fp32 is worth its reason too: it is the
    # smaller file, and nothing else says why it did not pay
    for a in ok:
        if a.device not in GPU_DEVICES or a.quantization not in ("int8", "dynamic"):
            continue
        for b in ok:
            same = (b.backend, b.device, b.threads, b.batch, family(b)) == (
                a.backend,
                a.device,
                a.threads,
                a.batch,
                family(a),
            )
            if not same or b.quantization != "fp32" or not b.p50_ms * 0.95 <= a.p50_ms <= b.p50_ms * 1.05:
                continue
            lines.append(
                f"note: {Path(a.model).name} (int8) is no faster than {Path(b.model).name} (fp32) on "
                f"{a.device} ({a.p50_ms / b.p50_ms:.2f}x its time, batch {a.batch})"
            )
            lines.extend(f"  why: {why}" for why in int8_reasons(a, host, ok))
    busy = [r for r in ok if r.busy]
    if busy:
        lines.append(
            f"warning: {len(busy)} row(s) ran while the machine was busy (load average above "
            f"{hostinfo.BUSY_LOAD:g} per core): their times may be high, and the p-values count a "
            "change of load between rows as a difference (the same file twice, at a load of 9.5 on 2 "
            "cores, differed by 9-29% with p < 0.001)"
        )
    noisy = [r for r in ok if not r.stable and r.runs and r.extra.get("seconds")]
    if noisy:
        lines.append(
            f"note: {len(noisy)} row(s) stopped at the time limit before the median was known to "
            "±2.5%: give --max-time more"
        )
    for r in ok:
        for note in (r.extra.get("execution") or {}).get("notes", []):
            lines.append(f"note: {r.label}: {note}")
    return lines
