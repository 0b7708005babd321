"""Optional libraries, imported lazily, with the exact install command when one is missing."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import tempfile
from collections.abc import Iterator
from types import ModuleType

from edgekit.errors import MissingDependencyError


def require(module: str, install: str) -> ModuleType:
    """Import `module`, or fail with the command that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingDependencyError(f"{module} is not installed ({e}): run `{install}`") from None


def installed(module: str) -> bool:
    """Whether `module` can be imported, without importing it.

    `find_spec("a.b")` imports package `a` to look inside it (3 s for tensorflow.lite), so for a
    submodule only the top-level package is checked unless that package is loaded already."""
    top = module.partition(".")[0]
    try:
        if importlib.util.find_spec(top) is None:
            return False
        return top == module or top not in sys.modules or importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Hide what C++ libraries print straight to file descriptor 2 (TensorFlow's start-up banner,
    the TFLite delegate notice) while a block runs; Python-level errors still propagate and
    whatever was printed is replayed if the block fails."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (some embedded interpreters, pytest capture)
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def module_command(module: str) -> list[str]:
    """`python -m MODULE` in a fresh interpreter that imports the installed edgekit whatever the
    working folder holds. `-m` puts the working folder first on sys.path, and a checkout of
    edgekit's repository there (its `edgekit/` folder holds only part of the package; pyproject maps
    `runtime/`, `models/` and `export/` in) would be imported instead; `-P` would keep it out, but
    only from Python 3.11. Paths given to the child stay relative to the same working folder."""
    import sys

    code = (
        "import runpy, sys; sys.path[:] = [p for p in sys.path if p not in ('', '.')]; "
        f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)"
    )
    return [sys.executable, "-c", code]
