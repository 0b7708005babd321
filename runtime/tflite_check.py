"""Checks a `.tflite` file must pass before a native interpreter sees it.

The TFLite loaders trust the flatbuffer: a flipped bit in an offset, a vector length or a tensor
shape made them read out of bounds (SIGSEGV, 12 of 400 mutants), allocate 16.8 GB, or hang. Two
lines of defence, cheapest first:

1. `verify_tflite(buf)`: a FlatBuffers verifier over the part of the TFLite schema
   (tensorflow/compiler/mlir/lite/schema/schema.fbs) the loader reads, in pure Python with bounds
   checks on every read: table and vtable offsets, vector and string lengths, buffer sizes against
   tensor shapes, tensor, buffer, operator-code and subgraph indices, quantization parameters.
   It needs no schema module (tflite-runtime ships none) and never allocates from a value it read.
2. `probe_tflite(path, module)`: what the verifier cannot see (an operator's options, kernels'
   own checks) is tried in a child process, under a memory cap and a timeout: load, allocate and
   invoke once on zeros. The verdict is cached by the file's SHA-256, so each file pays it once;
   the verifier's walk too, once the verdict records that the same bytes passed it; and under the
   file's stat (`stat_key`), so a start that finds it reads no digest either.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

from edgekit.errors import ModelFileError

# bytes per element of each TensorType (schema.fbs); None: variable size (strings, resources);
# INT4 packs two to a byte.
_TYPE_SIZES: dict[int, float | None] = {
    0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 5: None, 6: 1, 7: 2, 8: 8, 9: 1, 10: 8, 11: 16, 12: 8,
    13: None, 14: None, 15: 4, 16: 2, 17: 0.5, 18: 2,
}  # fmt: skip
MAX_TENSOR_BYTES = 2**31  # one tensor of 2 GiB is no edge model; a mutated shape claims terabytes
MAX_TOTAL_BYTES = 2**32  # every tensor together (the interpreter's arena holds the activations)
MAX_RANK = 16
PROBE_TIMEOUT_S = 60.0
PROBE_MEMORY = 4 * 2**30  # address space for the child beyond what it starts with


_U8, _U16, _I32, _U32, _U64 = (struct.Struct(f).unpack_from for f in ("<B", "<H", "<i", "<I", "<Q"))
_SCALARS = {"u8": (1, _U8), "i32": (4, _I32), "u32": (4, _U32), "u64": (8, _U64)}


class _Reader:
    """Bounds-checked reads of a flatbuffer: every offset is checked before it is followed."""

    __slots__ = ("buf", "n")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.n = len(buf)

    def fail(self, what: str) -> None:
        raise ValueError(what)

    def u8(self, pos: int) -> int:
        self._need(pos, 1)
        return self.buf[pos]

    def u32(self, pos: int) -> int:
        self._need(pos, 4)
        return _U32(self.buf, pos)[0]

    def _need(self, pos: int, size: int) -> None:
        if pos < 0 or pos + size > self.n:
            self.fail(f"an offset points outside the file ({pos} + {size} > {self.n} bytes)")

    def table(self, pos: int, what: str) -> _Table:
        # the hot path of the verifier (thousands of tables in an LSTM): checks inline
        buf, n = self.buf, self.n
        if pos % 4 or pos < 0 or pos + 4 > n:
            self.fail(f"{what} is outside the file or not aligned")
        vt = pos - _I32(buf, pos)[0]
        if vt < 0 or vt + 4 > n:
            self.fail(f"{what} has its vtable outside the file")
        vsize, tsize = _U16(buf, vt)[0], _U16(buf, vt + 2)[0]
        if vsize < 4 or vsize % 2 or vt + vsize > n or pos + tsize > n or tsize < 4:
            self.fail(f"{what} has a damaged vtable")
        offsets = struct.unpack_from(f"<{(vsize - 4) // 2}H", buf, vt + 4)
        for off in offsets:
            if off and off + 1 > tsize:
                self.fail(f"{what} has a field outside the table")
        return _Table(self, pos, offsets, tsize, what)


class _Table:
    __slots__ = ("r", "pos", "offsets", "tsize", "what")

    def __init__(self, r: _Reader, pos: int, offsets: tuple[int, ...], tsize: int, what: str) -> None:
        self.r, self.pos, self.offsets, self.tsize, self.what = r, pos, offsets, tsize, what

    def field(self, index: int, size: int) -> int:
        """Absolute position of field `index` (0 when absent), checked to lie inside the table."""
        off = self.offsets[index] if index < len(self.offsets) else 0
        if not off:
            return 0
        if off + size > self.tsize:
            self.r.fail(f"{self.what} has a field outside the table")
        return self.pos + off

    def scalar(self, index: int, kind: str, default: int = 0) -> int:
        size, read = _SCALARS[kind]
        at = self.field(index, size)
        return read(self.r.buf, at)[0] if at else default

    def vector(self, index: int, elem: int, what: str) -> tuple[int, int]:
        """(start, length) of a vector field, its elements checked to lie inside the file."""
        at = self.field(index, 4)
        if not at:
            return 0, 0
        vec = at + _U32(self.r.buf, at)[0]
        n = self.r.u32(vec)
        if vec % 4 or n * elem > self.r.n - vec - 4:
            self.r.fail(f"{what} claims {n} entries, more than the file holds")
        return vec + 4, n

    def ints(self, index: int, what: str, signed: bool = True) -> list[int]:
        start, n = self.vector(index, 4, what)
        return list(struct.unpack_from(f"<{n}{'i' if signed else 'I'}", self.r.buf, start)) if n else []

    def string(self, index: int, what: str) -> bytes:
        start, n = self.vector(index, 1, what)
        if start and self.r.u8(start + n) != 0:
            self.r.fail(f"{what} is not terminated")
        return self.r.buf[start : start + n] if start else b""

    def tables(self, index: int, what: str) -> list[_Table]:
        start, n = self.vector(index, 4, what)
        out = []
        for i in range(n):
            at = start + 4 * i
            out.append(self.r.table(at + self.r.u32(at), f"{what}[{i}]"))
        return out

    def sub(self, index: int, what: str) -> _Table | None:
        at = self.field(index, 4)
        return self.r.table(at + self.r.u32(at), what) if at else None


def verify_tflite(buf: bytes, source: str = "file") -> None:
    """Raise ModelFileError unless `buf` is a structurally sound TFLite model (see the module doc)."""
    if len(buf) < 8 or buf[4:8] != b"TFL3":  # another kind of file, not a damaged model
        raise ModelFileError(f"{source} is not a TFLite model (no TFL3 identifier)")
    try:
        _verify(_Reader(buf))
    except (ValueError, struct.error, OverflowError) as e:
        raise ModelFileError(f"{source} is a damaged TFLite model: {e}") from None


def _verify(r: _Reader) -> None:
    if r.n < 8 or r.buf[4:8] != b"TFL3":
        r.fail("no TFL3 identifier")
    model = r.table(r.u32(0), "the model")
    codes = model.tables(1, "operator_codes")
    for i, code in enumerate(codes):
        code.string(1, f"operator_codes[{i}].custom_code")
        if code.scalar(3, "i32") < 0:
            r.fail(f"operator_codes[{i}] has a negative builtin code")
    buffers = model.tables(4, "buffers")
    buffer_sizes = []
    for i, b in enumerate(buffers):
        _, n = b.vector(0, 1, f"buffers[{i}].data")
        offset, size = b.scalar(1, "u64"), b.scalar(2, "u64")
        if offset > 1 and (offset > r.n or size > r.n - offset):
            r.fail(f"buffers[{i}] points outside the file")
        buffer_sizes.append(n or (size if offset > 1 else 0))
    subgraphs = model.tables(2, "subgraphs")
    if not subgraphs:
        r.fail("it has no subgraph")
    total = 0
    for s, graph in enumerate(subgraphs):
        where = f"subgraphs[{s}]"
        tensors = graph.tables(0, f"{where}.tensors")
        for t, tensor in enumerate(tensors):
            total += _verify_tensor(r, tensor, f"{where}.tensors[{t}]", buffer_sizes)
            if total > MAX_TOTAL_BYTES:
                r.fail(f"its tensors need more than {MAX_TOTAL_BYTES // 2**30} GiB")
        nt = len(tensors)
        for field, name in ((1, "inputs"), (2, "outputs")):
            if any(not 0 <= i < nt for i in graph.ints(field, f"{where}.{name}")):
                r.fail(f"{where}.{name} names a tensor it does not have")
        graph.string(4, f"{where}.name")
        for o, op in enumerate(graph.tables(3, f"{where}.operators")):
            w = f"{where}.operators[{o}]"
            if op.scalar(0, "u32") >= len(codes):
                r.fail(f"{w} uses an operator code the model does not have")
            for field, name in ((1, "inputs"), (2, "outputs"), (8, "intermediates")):
                if any(not -1 <= i < nt for i in op.ints(field, f"{w}.{name}")):
                    r.fail(f"{w}.{name} names a tensor the subgraph does not have")
            if op.scalar(3, "u8"):
                op.sub(4, f"{w}.builtin_options")  # its table header and size, at least
            op.sub(12, f"{w}.builtin_options_2")
            op.vector(5, 1, f"{w}.custom_options")
            op.vector(7, 1, f"{w}.mutating_variable_inputs")
    model.string(3, "description")
    model.ints(5, "metadata_buffer")
    for i, meta in enumerate(model.tables(6, "metadata")):
        meta.string(0, f"metadata[{i}].name")
        if meta.scalar(1, "u32") >= len(buffers):
            r.fail(f"metadata[{i}] names a buffer the model does not have")
    for i, sig in enumerate(model.tables(7, "signature_defs")):
        index = sig.scalar(4, "u32")
        if index >= len(subgraphs):
            r.fail(f"signature_defs[{i}] names a subgraph the model does not have")
        _, nt = subgraphs[index].vector(0, 4, "tensors")
        sig.string(2, f"signature_defs[{i}].signature_key")
        for field in (0, 1):
            for j, m in enumerate(sig.tables(field, f"signature_defs[{i}] tensors")):
                m.string(0, f"signature_defs[{i}] tensor name")
                if m.scalar(1, "u32") >= nt:
                    r.fail(f"signature_defs[{i}] names a tensor its subgraph does not have ({j})")


def _verify_tensor(r: _Reader, tensor: _Table, where: str, buffer_sizes: list[int]) -> int:
    """Check one tensor; returns the bytes its shape needs."""
    shape = tensor.ints(0, f"{where}.shape")
    signature = tensor.ints(7, f"{where}.shape_signature")
    if len(shape) > MAX_RANK or len(signature) > MAX_RANK:
        r.fail(f"{where} has rank {max(len(shape), len(signature))}")
    if any(d < 0 for d in shape) or any(d < -1 for d in signature):
        r.fail(f"{where} has a negative dimension {shape}")
    kind = tensor.scalar(1, "u8")
    if kind not in _TYPE_SIZES:
        r.fail(f"{where} has an unknown type {kind}")
    tensor.string(3, f"{where}.name")
    count = 1
    for d in shape:
        count *= d
    size = _TYPE_SIZES[kind]
    nbytes = int(-(-count * size // 1)) if size else 0
    if nbytes > MAX_TENSOR_BYTES:
        r.fail(f"{where} claims {nbytes / 2**30:.1f} GiB (shape {shape})")
    index = tensor.scalar(2, "u32")
    if index >= max(len(buffer_sizes), 1):
        r.fail(f"{where} names a buffer the model does not have")
    sparse = tensor.field(6, 4)
    if sparse:
        tensor.sub(6, f"{where}.sparsity")
    has = buffer_sizes[index] if index < len(buffer_sizes) else 0
    if has and size and not sparse and has < nbytes:
        r.fail(f"{where} holds {has} bytes of data, its shape {shape} needs {nbytes}")
    quant = tensor.sub(4, f"{where}.quantization")
    if quant is not None:
        lengths = [quant.vector(f, 4 if f < 3 else 8, f"{where}.quantization")[1] for f in range(4)]
        scales, zeros = lengths[2], lengths[3]
        dim = quant.scalar(6, "i32")
        if scales > 1 or zeros > 1:
            if not 0 <= dim < max(len(shape), 1) or (shape and scales not in (1, shape[dim])):
                r.fail(f"{where} has {scales} quantization scales for shape {shape}")
            if zeros and zeros != scales:
                r.fail(f"{where} has {scales} quantization scales and {zeros} zero points")
    return nbytes


# ---- the child-process probe ------------------------------------------------------------------

_PROBE = r"""
import os, resource, sys
path, module, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_AS)
resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
devnull = os.open(os.devnull, os.O_WRONLY)
os.dup2(devnull, 2)  # the interpreter's INFO lines; the verdict goes to stdout
import importlib
import numpy as np
try:
    it = importlib.import_module(module).Interpreter(model_path=path)
    it.allocate_tensors()
    for d in it.get_input_details():
        it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
    it.invoke()
except MemoryError:
    print(f"it needs more than {limit / 2**30:.0f} GiB of memory to load"); sys.exit(3)
except Exception as e:
    text = str(e).strip().splitlines()
    print(text[0] if text else type(e).__name__); sys.exit(3)
"""


def cache_dir() -> Path:
    """Where verdicts are kept: $EDGEKIT_CACHE, else the user's cache folder (XDG) / edgekit."""
    if os.environ.get("EDGEKIT_CACHE"):
        return Path(os.environ["EDGEKIT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "edgekit"


def file_digest(buf: bytes) -> str:
    import hashlib  # OpenSSL's load (5 ms) only when a file is not known by its stat key

    return hashlib.sha256(buf).hexdigest()


def stat_key(st: os.stat_result) -> str:
    """A file's identity without reading it: device, inode, size and both times. Writing the file
    changes the key (its ctime, which no user can set back), so a verdict under it is on these bytes."""
    return f"stat-{st.st_dev}-{st.st_ino}-{st.st_size}-{st.st_mtime_ns}-{st.st_ctime_ns}"


def known_sound(st: os.stat_result, module: str) -> bool:
    """Whether the file with this stat passed the verifier and the probe under `module` before:
    then a start reads no digest either (5 ms of OpenSSL's load, and a pass over a large file)."""
    verdict = cached_verdict(stat_key(st), module)
    return verdict is not None and verdict["ok"] is True and verdict.get("verified") == VERIFIER


def remember_sound(st: os.stat_result, module: str) -> None:
    """Record that the file with this stat passed the verifier and the probe under `module`."""
    try:
        from edgekit.fileio import write_text

        write_text(_record(stat_key(st), module), json.dumps({"ok": True, "verified": VERIFIER}))
    except Exception:  # a read-only home: the digest is taken again next time
        pass


# in each verdict: the verifier these bytes passed before the probe ran. A later start that finds
# it skips the verifier too (its pure-Python walk is the larger part of a cached start, 10 ms on
# BlazeFace); a stricter verifier gets a new number, so files passed by an older one are re-read.
VERIFIER = 1


def cached_verdict(digest: str, module: str) -> dict | None:
    """The probe's recorded verdict on the file with SHA-256 `digest` (or `stat_key`) under
    `module`, or None."""
    try:
        verdict = json.loads(_record(digest, module).read_text())
    except (OSError, ValueError):
        return None
    return verdict if isinstance(verdict, dict) and "ok" in verdict else None


def _record(digest: str, module: str) -> Path:
    # keyed by the whole module: a verdict made with a module that could not load any file (edgekit
    # <= 0.1 tried `tensorflow.lite`, which has no Interpreter) is not this module's
    return cache_dir() / "tflite-probe" / f"{digest}-{module}.json"


def probe_tflite(path: Path, module: str, digest: str) -> None:
    """Raise ModelFileError if loading `path` with `module` crashes, hangs, runs out of memory or
    fails in a child process; the verdict is cached by `digest` (the file's SHA-256). Called once
    `verify_tflite` passed the same bytes, which the verdict records."""
    verdict = cached_verdict(digest, module)
    if verdict is None or verdict.get("verified") != VERIFIER:
        if verdict is None:
            verdict = _probe(path, module)
        verdict["verified"] = VERIFIER
        try:
            from edgekit.fileio import write_text

            write_text(_record(digest, module), json.dumps(verdict))
        except Exception:  # a read-only home: no cache, the probe runs again next time
            pass
    if not verdict["ok"]:
        raise ModelFileError(f"{path} is a damaged TFLite model: {verdict['why']}")


def _probe(path: Path, module: str) -> dict:
    import resource  # only when a file is probed

    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    limit = PROBE_MEMORY + 2 * Path(path).stat().st_size
    if soft != resource.RLIM_INFINITY:
        limit = min(limit, soft)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _PROBE, str(path), module, str(limit)],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "why": f"the interpreter did not load it within {PROBE_TIMEOUT_S:.0f} s"}
    if proc.returncode == 0:
        return {"ok": True}
    if proc.returncode < 0:
        return {"ok": False, "why": f"the interpreter crashed loading it (signal {-proc.returncode})"}
    why = proc.stdout.strip().splitlines()
    return {"ok": False, "why": why[-1][:300] if why else f"the interpreter failed (exit {proc.returncode})"}
