"""The `edgekit` command. One module per command in this package; each is a few lines that parse,
call the library and print. `core.py` holds the Typer app and the error boundary they share."""

from __future__ import annotations

import gc
import importlib
import pkgutil
import sys


def _register() -> None:
    """Import every command module of this package; each adds its commands to the app."""
    for info in pkgutil.iter_modules(__path__):
        if info.name not in ("core", "__main__") and not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


def _register_only(argv: list[str]) -> None:
    """Register only the command being invoked, where its module is named for it (`run` in
    `run.py`): `edgekit run` then imports no other command's module (nor what they import). Help,
    an unknown name or a command kept elsewhere (`list` in `listing.py`) registers them all."""
    from edgekit.cli.core import app

    name = next((a for a in argv if not a.startswith("-")), None)
    names = {info.name for info in pkgutil.iter_modules(__path__)}
    if name is None or not name.isidentifier() or name not in names or name in ("core", "__main__"):
        _register()
        return
    importlib.import_module(f"{__name__}.{name}")
    if not any((c.name or c.callback.__name__.replace("_", "-")) == name for c in app.registered_commands):
        _register()


def main() -> None:
    from edgekit.errors import EdgekitError

    gc.disable()  # for start-up only: each command turns it back on (`core.work_begins`)
    from edgekit.cli.core import app
    from edgekit.fileio import claim_temp_dir

    claim_temp_dir()  # what killed edgekit processes left in the temp folder goes; ours goes at exit
    try:
        _register_only(sys.argv[1:])  # a command's choices come from the registries (plugins too)
    except EdgekitError as e:
        from edgekit.cli.core import fail

        fail(str(e))
        sys.exit(1)
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
