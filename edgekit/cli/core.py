"""The Typer app and the `command` wrapper every command module uses: library errors become one
red line on stderr and exit code 1 (the traceback with --verbose).

Exit codes, one rule for every command: 0 success; 1 anything the user can fix, a bad value of an
option or argument included, whoever finds it (the parser: `--threads abc`, `--threads 0`; or
edgekit: `--to xyz`, `--normalize 0..255`), said in one red line; 2 a command line of the wrong
shape (an unknown option or command, a missing argument), with typer's usage panel; 130 Ctrl-C."""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from typer.core import TyperGroup

# UsageError: for a command that refuses the shape of its command line itself (exit 2)
try:  # typer 0.2x carries its own click
    from typer._click.exceptions import MissingParameter, UsageError  # noqa: F401
except ImportError:  # typer on click
    from click.exceptions import MissingParameter, UsageError  # noqa: F401

from edgekit import __version__
from edgekit.errors import EdgekitError


def _plain_coercion() -> None:
    """Coerce parameters of plain types (str, int, float, bool, Path, those or None, and lists of
    them: an option given again and again) as click does, without pydantic. typer 0.2x builds a pydantic TypeAdapter for every parameter of the
    invoked command, which imports pydantic: 0.1-0.2 s of every `edgekit` start, on a command
    whose whole job may take less. Any other type, and any parameter with a parser, a click type,
    path checks or choices, still goes through typer's own coercion."""
    import pathlib
    import types
    import typing

    try:
        from typer import _coercion
        from typer import core as typer_core
    except ImportError:  # another typer: its own coercion, unchanged
        return
    original = getattr(typer_core, "build_runtime_param", None)
    base = getattr(_coercion, "RuntimeParam", None)
    if original is None or base is None or getattr(original, "_edgekit", False):
        return
    plain = (str, int, float, bool, pathlib.Path)

    def optional(annotation: Any) -> Any:
        """X from X | None (and X itself)."""
        if typing.get_origin(annotation) in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) == 1:
                return args[0]
        return annotation

    def listed(annotation: Any) -> type | None:
        """X from list[X] or list[X] | None (an option given again and again), for a plain X."""
        inner = optional(annotation)
        if typing.get_origin(inner) is list and len(typing.get_args(inner)) == 1:
            item = typing.get_args(inner)[0]
            return item if item in plain else None
        return None

    def leaf(annotation: Any) -> type | None:
        inner = optional(annotation)
        return inner if inner in plain else listed(annotation)

    class PlainParam(base):  # type: ignore[misc, valid-type]
        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            if listed(self.annotation) is not None:
                return [self._one(v, param, ctx) for v in value]
            return self._one(value, param, ctx)

        def _one(self, value: Any, param: Any, ctx: Any) -> Any:
            kind = leaf(self.annotation)
            info = self.parameter_info
            try:
                if kind is bool and isinstance(value, str):
                    value = value.strip().lower() in ("1", "true", "t", "yes", "y", "on")
                else:
                    value = kind(value)
            except (TypeError, ValueError):
                name = {int: "a whole number", float: "a number"}.get(kind, f"a {kind.__name__}")
                raise typer.BadParameter(f"takes {name}, not {value!r}", ctx=ctx, param=param) from None
            lo, hi = getattr(info, "min", None), getattr(info, "max", None)
            if kind in (int, float) and ((lo is not None and value < lo) or (hi is not None and value > hi)):
                if getattr(info, "clamp", False):
                    return min(max(value, lo if lo is not None else value), hi if hi is not None else value)
                if lo is not None and hi is not None:
                    bounds = f"between {lo:g} and {hi:g}"
                else:
                    bounds = f"at least {lo:g}" if lo is not None else f"at most {hi:g}"
                raise typer.BadParameter(f"must be {bounds}, not {value:g}", ctx=ctx, param=param)
            return value

    def build(descriptor: Any) -> Any:
        info = descriptor.parameter_info
        simple = (
            leaf(descriptor.annotation) is not None
            and descriptor.file_annotation is None
            and getattr(info, "parser", None) is None
            and getattr(info, "click_type", None) is None
            and not any(
                getattr(info, flag, False) for flag in ("exists", "resolve_path", "allow_dash", "path_type")
            )
            and getattr(info, "file_okay", True)
            and getattr(info, "dir_okay", True)
        )
        if not simple:
            return original(descriptor)
        return PlainParam(annotation=descriptor.annotation, parameter_info=info)

    build._edgekit = True  # type: ignore[attr-defined]
    typer_core.build_runtime_param = build


_plain_coercion()


def _readable_types() -> None:
    """Help names a value in words (`--threads INTEGER`, `models... PATH...`), as click's own help
    reads, and shows nothing beside a flag, where typer 0.2x prints Python types (`<list[str]>`,
    `<int>`, `<bool>`). Choices keep typer's own display (`a|b|c`)."""
    import typing

    try:
        from typer.core import TyperArgument, TyperOption
    except ImportError:
        return
    words = {int: "INTEGER", float: "NUMBER", str: "TEXT"}

    def patched(original: Callable[..., Any]) -> Callable[..., Any]:
        def display_type_rich(self: Any, ctx: Any) -> str | None:
            desc = getattr(self, "type_descriptor", None)
            if getattr(self, "is_flag", False):
                return None
            if self.metavar is not None or desc is None or desc.is_choice:
                return original(self, ctx)
            kind = desc.annotation
            if desc.is_list:
                kind = (typing.get_args(kind) or (str,))[0]
            word = words.get(kind) or ("PATH" if getattr(kind, "__name__", "") == "Path" else "VALUE")
            return word + ("..." if self.nargs != 1 else "")

        display_type_rich._edgekit = True  # type: ignore[attr-defined]
        return display_type_rich

    for cls in (TyperArgument, TyperOption):
        original = getattr(cls, "display_type_rich", None)
        if original is not None and not getattr(original, "_edgekit", False):
            cls.display_type_rich = patched(original)


_readable_types()


class Group(TyperGroup):
    """The app's command group: every bad value is exit 1 with one red line, as edgekit's own
    refusals are (the parser's `BadParameter` would be exit 2 in a usage panel)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except typer.BadParameter as e:
            if isinstance(e, MissingParameter):  # a missing argument: the command line's shape
                raise
            fail(bad_value_message(e))
            raise typer.Exit(1) from None


def bad_value_message(e: Any) -> str:
    """A parser's refusal of one value as one sentence naming the option: `--threads must be at
    least 1, not 0`, `--threads takes a whole number, not 'abc'`."""
    param = e.param
    hint = e.param_hint or (param and (param.opts[0] if getattr(param, "opts", None) else param.name.upper()))
    if isinstance(hint, list | tuple):
        hint = " / ".join(hint)
    message = e.message.rstrip(".")
    if not hint or message.startswith("-"):
        return message
    joint = " " if message.split(" ", 1)[0] in ("takes", "must") else ": "
    return f"{hint}{joint}{message}"


EXIT_CODES = (
    "Exit codes: 0 success; 1 anything you can fix (a bad value of any option, a missing or broken "
    "file, bad data, a missed accuracy bar), said in one line; 2 a command line of the wrong shape "
    "(an unknown option, a missing argument); 130 Ctrl-C."
)

app = typer.Typer(
    cls=Group,
    epilog=EXIT_CODES,
    name="edgekit",
    help="Train the course's Keras models, export them to validated TFLite/ONNX, run and benchmark them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
_state = {"verbose": False}

F = TypeVar("F", bound=Callable[..., Any])


class Interrupted(Exception):  # noqa: N818 (what happened, as the user sees it)
    """Ctrl-C in a command that can go on later: the message says how (`--resume`)."""


def fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)


def work_begins() -> None:
    """Turn the cyclic garbage collector back on: `edgekit.cli.main` turns it off for start-up.
    Imports, typer's parsing and opening a model allocate many objects that live as long as the
    process (modules, classes, functions) and make few cycles; the collector's passes over them
    were 20 ms of a 0.45 s `edgekit run`. They are frozen (`gc.freeze`: never traversed again,
    the little garbage among them never freed) and collection resumes for what the work makes."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def command(fn: F | None = None, *, collect_from_start: bool = True) -> Any:
    """Wrap a command: library errors -> one red line and exit 1 (the traceback with --verbose).
    The garbage collector is back on when the command starts, or, with `collect_from_start=False`,
    when the command calls `work_begins()` (after its own start-up: `run` once the model is open)."""
    if fn is None:
        return functools.partial(command, collect_from_start=collect_from_start)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if collect_from_start:
            work_begins()
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
        except Interrupted as e:
            fail(f"interrupted: {e}")
            raise typer.Exit(130) from None
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
