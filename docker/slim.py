"""Take out of an installed tree (`pip install --target DIR`) what edgekit's runtime never reads:
what keeps the Pi image under its 350 MB goal.

    python3 docker/slim.py DIR

Prints what it took and how much, one line each. Every removal is kept below as data with the
reason it is safe; the image's own checks (`edgekit doctor`, `edgekit run`, the runtime tests under
qemu: docker/test-images.sh) are what proves the tree still works.

The shared libraries are not stripped: the wheels' bundled libraries and extension modules were
rewritten by auditwheel (patchelf), and both GNU strip 2.40 and llvm-strip 14 turn those into files
the loader refuses ("ELF load command address/offset not page-aligned", numpy 2.4 on x86-64).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

# (glob under DIR, why nothing edgekit runs reads it)
REMOVE = [
    (
        "onnxruntime/capi/libonnxruntime.so.*",
        "the C API library (27 MB): the Python module has the whole runtime linked in and neither"
        " needs nor opens it (not in its DT_NEEDED, never named in onnxruntime's Python)",
    ),
    (
        "ai_edge_litert/libLiteRtWebGpuAccelerator.so",
        "LiteRT's WebGPU accelerator (17 MB): opened only when the CompiledModel API asks for a GPU"
        " accelerator; edgekit's TFLite backend uses the Interpreter (CPU, XNNPACK)",
    ),
    (
        "cv2/data/*.xml",
        "OpenCV's Haar cascades (9.8 MB), read only by cv2.CascadeClassifier, which edgekit never"
        " calls (its faces are BlazeFace's); cv2.data, which cv2 imports, stays",
    ),
    ("**/tests", "packages' own test suites (numpy's: 7 MB)"),
    ("numpy/_core/include", "C headers, for building extensions against numpy"),
    ("numpy/*/lib/*.a", "static libraries, for building extensions against numpy"),
    ("**/*.pyi", "type stubs: read by type checkers, never by Python"),
]


def slim(root: Path) -> int:
    """Delete what REMOVE names under root, saying what and why; returns the bytes freed."""
    freed = 0
    for pattern, why in REMOVE:
        size = count = 0
        for path in sorted(root.glob(pattern)):
            if not path.exists():  # inside a folder this pattern already took
                continue
            size += _size(path)
            count += 1
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        if count:
            print(f"removed {count} x {pattern}, {size / 1e6:.1f} MB: {why}")
        freed += size
    return freed


def _size(path: Path) -> int:
    if path.is_dir() and not path.is_symlink():
        return sum(p.lstat().st_size for p in path.rglob("*") if not p.is_dir())
    return path.lstat().st_size


def main(argv: list[str]) -> None:
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        raise SystemExit(__doc__)
    root = Path(argv[0])
    print(f"slim: {slim(root) / 1e6:.1f} MB freed in {root}")


if __name__ == "__main__":
    main(sys.argv[1:])
