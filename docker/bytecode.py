"""Compile the bytecode that a start of edgekit in the Pi image reads, and only that: the image keeps
its start-up within its 350 MB.

    python3 docker/bytecode.py MODULES SITE ROOT OUT

MODULES is docker/pi-bytecode.txt: one module a line, `*` matching as in a file name. Each is found
in SITE (the packages, `pip install --target`; compiled in place) or else in the standard library of
ROOT, the image's base root file system (usr/local/lib/pythonX.Y or usr/lib/pythonX.Y); those are
written under OUT at their paths in the image, to be copied onto the base. edgekit itself is
compiled whole by the Dockerfile (its commands' paths differ with their options), not listed here.

Why: without bytecode, each start compiles every module it imports, stdlib included (neither the
local Debian base, whose maintainer scripts never ran, nor python:3.11-slim, which deletes its .pyc,
has any), and the image cannot keep what it compiled (non-root, PYTHONDONTWRITEBYTECODE). All of it
compiled costs 36 MB; what `edgekit doctor`, `info`, `run` and `bench` import, 10 MB.

The .pyc are unchecked-hash (PEP 552): used without looking at the source's timestamp, so a build
that rewrites file times (reproducible builds clamp them to SOURCE_DATE_EPOCH) cannot silently make
every start compile again, and nothing in the image edits its sources. The sources stay, so
tracebacks and `inspect` still show code. This Python must be the image's X.Y (bytecode is per
minor version): the build stage's base is the same Python as the image's, and this is checked.
"""

from __future__ import annotations

import glob
import importlib.util
import py_compile
import sys
from pathlib import Path

UNCHECKED = py_compile.PycInvalidationMode.UNCHECKED_HASH


def read_modules(path: Path) -> list[str]:
    """The module names in a MODULES file: one a line, `#` starts a comment."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def find_stdlib(root: Path) -> Path:
    """The standard library of this Python's X.Y in root, or SystemExit saying none is there."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [root / "usr/local/lib" / version, root / "usr/lib" / version]
    for folder in candidates:
        if (folder / "os.py").is_file():
            return folder
    found = sorted(
        str(p.parent.relative_to(root))
        for pattern in ("usr/lib/python3*/os.py", "usr/local/lib/python3*/os.py")
        for p in root.glob(pattern)
    )
    raise SystemExit(
        f"no {version} standard library in {root} ({', '.join(str(c) for c in candidates)}); it has"
        f" {', '.join(found) or 'none'}: bytecode is per Python version, so the build stage's Python"
        " must be the image's"
    )


def module_files(name: str, folder: Path) -> list[Path]:
    """The source files of module name (wildcards allowed) under folder: a .py or a package's __init__.py."""
    base = str(folder / name.replace(".", "/"))
    return sorted(Path(p) for p in glob.glob(base + ".py") + glob.glob(base + "/__init__.py"))


def inside(root: Path, path: Path) -> Path:
    """path with its symbolic links followed within root, as the image will see them: Debian's
    sitecustomize.py links to /etc/python3.X/, which is root/etc/... here."""
    for _ in range(40):
        if not path.is_symlink():
            return path
        target = Path(path.readlink())
        path = root / target.relative_to("/") if target.is_absolute() else path.parent / target
    raise SystemExit(f"{path}: too many levels of symbolic links")


def compile_modules(names: list[str], site: Path, root: Path, out: Path) -> tuple[int, int, list[str]]:
    """Compile each named module; returns (in site, in the stdlib, names found in neither)."""
    stdlib = find_stdlib(root)
    in_site = in_stdlib = 0
    missing = []
    for name in names:
        files = module_files(name, site)
        if files:  # SITE comes first on the image's sys.path (PYTHONPATH), so it shadows the stdlib
            for source in files:
                py_compile.compile(str(source), doraise=True, invalidation_mode=UNCHECKED)
            in_site += len(files)
            continue
        files = module_files(name, stdlib)
        if not files:
            missing.append(name)
        for source in files:
            in_image = Path("/") / source.relative_to(root)
            target = out / Path(importlib.util.cache_from_source(str(in_image))).relative_to("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            py_compile.compile(
                str(inside(root, source)),
                cfile=str(target),
                dfile=str(in_image),
                doraise=True,
                invalidation_mode=UNCHECKED,
            )
            in_stdlib += 1
    return in_site, in_stdlib, missing


def main(argv: list[str]) -> None:
    if len(argv) != 4 or not all(Path(p).is_dir() for p in argv[1:3]):
        raise SystemExit(__doc__)
    modules, site, root, out = (Path(p) for p in argv)
    names = read_modules(modules)
    in_site, in_stdlib, missing = compile_modules(names, site, root, out)
    print(
        f"bytecode: {len(names)} names in {modules}: {in_site} files compiled in {site}, {in_stdlib} of the standard library into {out}"
    )
    if missing:  # not an error: a name of one base (Debian's sitecustomize) or of an older dependency
        print(f"bytecode: not found here: {', '.join(missing)}")


if __name__ == "__main__":
    main(sys.argv[1:])
