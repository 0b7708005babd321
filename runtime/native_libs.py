"""Which shared libraries a native library needs (its ELF `DT_NEEDED` entries, as `readelf -d`
lists them), whether this process can load each, and, where one is missing, which other major
versions of it are on this machine: what `edgekit doctor` and the ONNX backend say about onnxruntime's
TensorRT provider, whose libraries (TensorRT, CUDA, cuDNN) a user installs apart from onnxruntime.

A library's major version is in its file name (`libnvinfer.so.10`): the loader asks for that name,
so a `libnvinfer.so.11` beside it does not serve, which is why a newer TensorRT than the one a
provider was built for fails as surely as none."""

from __future__ import annotations

import ctypes
import os
import re
import struct
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

# the product a library belongs to, by its name's stem, for "found libnvinfer.so.11 (TensorRT 11)"
PRODUCTS = {
    "libnvinfer": "TensorRT",
    "libnvinfer_plugin": "TensorRT",
    "libnvonnxparser": "TensorRT",
    "libcudart": "CUDA",
    "libcublas": "CUDA",
    "libcublasLt": "CUDA",
    "libcufft": "CUDA",
    "libcurand": "CUDA",
    "libcudnn": "cuDNN",
}
_PT_LOAD, _PT_DYNAMIC = 1, 2
_DT_NULL, _DT_NEEDED, _DT_STRTAB = 0, 1, 5


def elf_needed(path: str | Path) -> list[str]:
    """The `DT_NEEDED` entries of an ELF shared library (the libraries the loader must find for it),
    in the file's order; [] for a file that is not ELF. Read from the dynamic segment, as the loader
    reads it, so no binutils are needed on the device."""
    data = Path(path).read_bytes()
    if data[:4] != b"\x7fELF":
        return []
    wide, order = data[4] == 2, "<" if data[5] == 1 else ">"
    if wide:
        phoff, phentsize, phnum = (
            struct.unpack_from(order + "Q", data, 0x20)[0],
            *struct.unpack_from(order + "HH", data, 0x36),
        )
        header, entry = order + "IIQQQQQQ", order + "qQ"  # p_type, p_flags, p_offset, p_vaddr, ...
    else:
        phoff, phentsize, phnum = (
            struct.unpack_from(order + "I", data, 0x1C)[0],
            *struct.unpack_from(order + "HH", data, 0x2A),
        )
        header, entry = order + "IIIIIIII", order + "iI"  # p_type, p_offset, p_vaddr, ...
    loads, dynamic = [], None
    for i in range(phnum):
        fields = struct.unpack_from(header, data, phoff + i * phentsize)
        if wide:
            p_type, _, offset, vaddr, _, filesz = fields[:6]
        else:
            p_type, offset, vaddr, _, filesz = fields[:5]
        if p_type == _PT_LOAD:
            loads.append((vaddr, offset, filesz))
        elif p_type == _PT_DYNAMIC:
            dynamic = (offset, filesz)
    if dynamic is None:
        return []
    size = struct.calcsize(entry)
    needed, strtab = [], None
    for pos in range(dynamic[0], dynamic[0] + dynamic[1] - size + 1, size):
        tag, value = struct.unpack_from(entry, data, pos)
        if tag == _DT_NULL:
            break
        if tag == _DT_NEEDED:
            needed.append(value)
        elif tag == _DT_STRTAB:
            strtab = value
    if strtab is None:
        return []
    # DT_STRTAB is an address: the file offset is where the PT_LOAD segment holding it maps it from
    base = next((off + strtab - va for va, off, sz in loads if va <= strtab < va + sz), strtab)
    return [data[base + n : data.index(b"\0", base + n)].decode("utf-8", "replace") for n in needed]


def _stem_major(name: str) -> tuple[str, int | None]:
    """libnvinfer.so.10.3.0 -> (libnvinfer, 10); libfoo.so -> (libfoo, None)."""
    m = re.match(r"(.+?)\.so(?:\.(\d+))?", name)
    if not m:
        return name, None
    return m.group(1), int(m.group(2)) if m.group(2) else None


def product(name: str) -> str:
    """ "libnvinfer.so.11" -> "TensorRT 11"; a library of no known product by its name alone."""
    stem, major = _stem_major(name)
    what = PRODUCTS.get(stem)
    if what is None:
        return name
    return f"{what} {major}" if major is not None else what


def wheel_lib_dirs() -> list[Path]:
    """Folders of NVIDIA's pip wheels in this Python's site-packages (nvidia/*/lib, tensorrt_libs,
    tensorrt), where `pip install tensorrt-cu13` and onnxruntime-gpu's `[cuda,cudnn]` extras put
    their libraries: the loader does not look there by itself."""
    import site

    roots = [*site.getsitepackages(), site.getusersitepackages(), *sys.path]
    found: list[Path] = []
    for root in dict.fromkeys(roots):
        base = Path(root)
        if not base.is_dir():
            continue
        candidates = [base / "tensorrt_libs", base / "tensorrt", *sorted(base.glob("nvidia/*/lib"))]
        found.extend(p for p in candidates if p.is_dir() and p not in found)
    return found


def _ldconfig_dirs() -> list[Path]:
    """The folders of the libraries in the loader's cache (`ldconfig -p`), [] where there is none."""
    for tool in ("/sbin/ldconfig", "/usr/sbin/ldconfig", "ldconfig"):
        try:
            out = subprocess.run([tool, "-p"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        return list(
            dict.fromkeys(
                Path(line.rsplit("=>", 1)[1].strip()).parent for line in out.splitlines() if "=>" in line
            )
        )
    return []


def search_dirs() -> list[Path]:
    """Where a library of some version may lie on this machine: LD_LIBRARY_PATH, the loader's cache,
    the usual system and CUDA folders, and NVIDIA's pip wheels."""
    dirs = [Path(p) for p in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p]
    dirs += _ldconfig_dirs()
    dirs += [
        Path(p)
        for p in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/local/lib", "/usr/lib64")
    ]
    dirs += sorted(Path("/usr/local").glob("cuda*/lib64")) + sorted(
        Path("/usr/local").glob("cuda*/targets/*/lib")
    )
    dirs += wheel_lib_dirs()
    return [d for d in dict.fromkeys(dirs) if d.is_dir()]


def versions_found(name: str, dirs: list[Path] | None = None) -> list[str]:
    """Other files of the same library on this machine, one per major version: for
    libnvinfer.so.10, the libnvinfer.so.11 of a newer TensorRT (the name the loader would ask for is
    left out)."""
    stem, want = _stem_major(name)
    majors: dict[int, str] = {}
    for folder in search_dirs() if dirs is None else dirs:
        for path in folder.glob(f"{stem}.so.*"):
            got_stem, major = _stem_major(path.name)
            if got_stem == stem and major is not None and major != want:
                majors.setdefault(major, f"{stem}.so.{major}")
    return [majors[m] for m in sorted(majors)]


@dataclass
class LibraryCheck:
    """What loading a list of libraries found: those that loaded; for each one that did not, the
    other major versions of it on this machine (a newer TensorRT, an older CUDA) or, where the file
    is there but does not load, why (a library it needs is missing, a wrong architecture)."""

    needed: list[str]
    loaded: list[str] = field(default_factory=list)
    missing: dict[str, list[str]] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.missing

    def describe(self, who: str) -> str:
        """What did not load, one clause per library: "libnvinfer.so.10 is missing; found
        libnvinfer.so.11 (TensorRT 11), which WHO cannot load"."""
        parts = []
        for name, others in self.missing.items():
            if name in self.reasons:
                parts.append(f"{name} is there but does not load: {self.reasons[name]}")
            elif others:
                shown = ", ".join(f"{o} ({product(o)})" for o in others)
                parts.append(f"{name} is missing; found {shown}, which {who} cannot load")
            else:
                parts.append(f"{name} is missing ({product(name)})")
        return "; ".join(parts)


def _dlopen(target: str) -> str | None:
    """Load a library into this process for everyone after (RTLD_GLOBAL); the loader's error or None."""
    try:
        ctypes.CDLL(target, mode=getattr(os, "RTLD_GLOBAL", 0))
    except OSError as e:
        return str(e)
    return None


def load_libraries(names: list[str]) -> LibraryCheck:
    """Load each library by the name the loader will be asked for, so that the provider's own
    `dlopen` of that name finds it loaded; one the loader cannot find is loaded from NVIDIA's pip
    wheels by its full path where it is there. Nothing is loaded that the provider would not load
    next. Records what did not load, and the other major versions found of what is missing."""
    check = LibraryCheck(list(names))
    wheels = wheel_lib_dirs()
    for name in names:
        error = _dlopen(name)
        if error is not None:
            path = next((d / name for d in wheels if (d / name).is_file()), None)
            if path is not None:
                error = _dlopen(str(path))
        if error is None:
            check.loaded.append(name)
            continue
        gone = re.match(r"(\S+?): cannot open shared object file", error)
        if gone and Path(gone.group(1)).name == name:  # the library itself is not there
            check.missing[name] = versions_found(name)
        else:  # it is there, but a library it needs is not, or it is not one this machine runs
            check.missing[name] = []
            check.reasons[name] = (
                f"it needs {Path(gone.group(1)).name}, which is missing"
                if gone
                else error.rsplit(": ", 1)[-1]
            )
    return check
