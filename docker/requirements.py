"""Print edgekit's requirements from pyproject.toml, one a line, for an image to install before the
package itself (`pip install -r` then `pip install --no-deps .`), so the dependency layer is cached
apart from the code and a variant can swap a wheel:

    python3 docker/requirements.py [--extra NAME]... [--headless] [--gpu]

--headless: opencv-python-headless in place of opencv-python (no libGL, no GUI: a container has no
display). --gpu: onnxruntime-gpu with its CUDA/cuDNN wheels in place of onnxruntime (both install the
same `onnxruntime` module, so only one may be there).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import tomllib

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def requirements(extras: list[str], headless: bool, gpu: bool) -> list[str]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    optional = project["optional-dependencies"]
    unknown = [e for e in extras if e not in optional]
    if unknown:
        raise SystemExit(f"no extra {', '.join(unknown)} in {PYPROJECT}: there are {', '.join(optional)}")
    reqs = list(project["dependencies"]) + [r for e in extras for r in optional[e]]
    out = []
    for req in reqs:
        name = re.split(r"[\s\[<>=!~;]", req, maxsplit=1)[0].lower()
        if headless and name == "opencv-python":
            req = "opencv-python-headless" + req[len(name) :]
        if gpu and name == "onnxruntime":
            req = next(r for r in optional["gpu"] if r.startswith("onnxruntime-gpu"))
        if gpu and req in out:
            continue
        out.append(req)
    return out


def main(argv: list[str]) -> None:
    extras, headless, gpu, args = [], False, False, list(argv)
    while args:
        arg = args.pop(0)
        if arg == "--extra" and args:
            extras.append(args.pop(0))
        elif arg == "--headless":
            headless = True
        elif arg == "--gpu":
            gpu = True
        else:
            raise SystemExit(__doc__)
    print("\n".join(requirements(extras, headless, gpu)))


if __name__ == "__main__":
    main(sys.argv[1:])
