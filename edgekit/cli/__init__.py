"""The `edgekit` command. One module per command in this package; each is a few lines that parse,
call the library and print. `core.py` holds the Typer app and the error boundary they share."""

from __future__ import annotations

import importlib
import pkgutil
import sys


def _register() -> None:
    """Import every command module of this package; each adds its commands to the app."""
    for info in pkgutil.iter_modules(__path__):
        if info.name not in ("core", "__main__") and not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


def main() -> None:
    from edgekit.cli.core import app

    _register()
    try:
        app()
    except BrokenPipeError:  # `edgekit run ... | head`
        sys.stderr.close()


def __getattr__(name: str):
    """`from edgekit.cli import app`: the app with every command registered (tests, embedding)."""
    if name == "app":
        from edgekit.cli.core import app

        _register()
        return app
    raise AttributeError(name)
