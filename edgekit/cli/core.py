"""The Typer app and the `command` wrapper every command module uses: library errors become one
red line on stderr and exit code 1 (the traceback with --verbose)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from edgekit import __version__
from edgekit.errors import EdgekitError

app = typer.Typer(
    name="edgekit",
    help="Train the course's Keras models, export them to validated TFLite/ONNX, run and benchmark them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
_state = {"verbose": False}

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)


def command(fn: F) -> F:
    """Wrap a command: library errors -> one red line and exit 1 (the traceback with --verbose)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except EdgekitError as e:
            if _state["verbose"]:
                raise
            fail(str(e))
            raise typer.Exit(1) from None
        except BrokenPipeError:  # `edgekit list | head`: click closes stdout quietly
            raise
        except KeyboardInterrupt:
            fail("interrupted")
            raise typer.Exit(130) from None
        except OSError as e:  # a disk full, a permission denied: the user's to fix
            if _state["verbose"]:
                raise
            where = f" ({e.filename})" if getattr(e, "filename", None) else ""
            fail(f"{e.strerror or e}{where}")
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"edgekit {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """edgekit: from a Keras model to a small, fast, correct file on a device."""
    _state["verbose"] = verbose
