"""MkDocs hooks: the parts of the documentation that the code already knows are generated from it
at build time, so they cannot go stale: the CLI reference (from the Typer app: every command, its
arguments and options, their help), and the tables of every registry (recipes, export formats and
modes, backends, model file kinds, tasks, sources, sinks). A page asks for one with a marker such
as `<!-- generated: cli -->` on a line of its own."""

from __future__ import annotations

import re
from pathlib import Path

MARKER = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.M)


ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / ".docs-src"  # the package as it is installed, for mkdocstrings to read (mkdocs.yml)


def lay_out_sources() -> None:
    """Lay the package out as it is installed: the repository keeps `runtime/`, `models/` and
    `export/` beside `edgekit/` (pyproject's package-dir maps them in), so the API pages read their
    docstrings from a tree of links, `edgekit/` with the three folders inside. Done when MkDocs
    imports this file, before mkdocstrings looks for its `paths`."""
    package = SOURCES / "edgekit"
    package.mkdir(parents=True, exist_ok=True)
    wanted = {p.name: p for p in (ROOT / "edgekit").iterdir() if p.name != "__pycache__"}
    wanted.update({name: ROOT / name for name in ("runtime", "models", "export")})
    for link in package.iterdir():
        if link.name not in wanted or not link.is_symlink() or link.resolve() != wanted[link.name]:
            link.unlink()
    for name, target in wanted.items():
        if not (package / name).is_symlink():
            (package / name).symlink_to(target)


lay_out_sources()


def _cell(text: object) -> str:
    return " ".join(str(text or "").split()).replace("|", "\\|")


def cli_reference() -> str:
    import click
    import typer.main

    from edgekit.cli import app

    root = typer.main.get_command(app)
    out: list[str] = []

    def command(cmd: click.Command, path: str, level: int) -> None:
        ctx = click.Context(cmd, info_name=path)
        out.append(f"{'#' * level} `{path}`\n")
        usage = " ".join(cmd.collect_usage_pieces(ctx))
        out.append(f"```\n{path} {usage}\n```\n")
        if cmd.help:
            out.append(" ".join(cmd.help.split()) + "\n")
        rows = [p.get_help_record(ctx) for p in cmd.get_params(ctx)]
        rows = [r for r in rows if r is not None]
        if rows:
            out.append("| argument or option | what it does |\n|---|---|")
            out.extend(f"| `{_cell(name)}` | {_cell(help_)} |" for name, help_ in rows)
            out.append("")
        for name, sub in sorted(getattr(cmd, "commands", {}).items()):
            command(sub, f"{path} {name}", level + 1)

    for name, cmd in root.commands.items():
        command(cmd, f"edgekit {name}", 2)
    return "\n".join(out)


def recipes() -> str:
    from edgekit.models.recipe import get_recipe, recipe_names

    rows = ["| recipe | task | dataset | what it is |", "|---|---|---|---|"]
    for name in recipe_names():
        r = get_recipe(name)
        rows.append(f"| `{name}` | {r.task} | {_cell(r.data.dataset)} | {_cell(r.description)} |")
    return "\n".join(rows)


def formats() -> str:
    from edgekit.export.base import EXPORTERS, exporter_names

    rows = ["| `--to` | modes (`--quantize`) | what it writes |", "|---|---|---|"]
    for name in exporter_names():
        e = EXPORTERS.get(name)
        modes = ", ".join(m.value for m in e.modes)
        rows.append(f"| `{name}` | {modes} | {_cell(e.description)} (`{e.suffix}`) |")
    return "\n".join(rows)


def backends() -> str:
    from edgekit.runtime.backends import BACKENDS

    rows = ["| backend | opens | devices | install | note |", "|---|---|---|---|---|"]
    for b in BACKENDS:
        rows.append(
            f"| `{b.name}` | {' '.join(b.suffixes)} | {', '.join(b.devices)} | `{b.install}` | {_cell(b.note)} |"
        )
    return "\n".join(rows)


def file_kinds() -> str:
    from edgekit.runtime.files import FILE_KINDS

    rows = ["| kind | files | card | what it is |", "|---|---|---|---|"]
    for k in FILE_KINDS:
        where = "inside, sealed with a digest" if k.sealed else "inside or beside"
        rows.append(f"| `{k.name}` | {' '.join(k.suffixes) or 'a folder'} | {where} | {_cell(k.description)} |")
    return "\n".join(rows)


def tasks() -> str:
    from edgekit.runtime.tasks import TASKS

    rows = ["| task | takes | a classifier |", "|---|---|---|"]
    for t in TASKS:
        rows.append(f"| `{t.name}` | {t.accepts} | {'yes' if t.classifies else ''} |")
    return "\n".join(rows)


def sources() -> str:
    from edgekit.runtime.sources import SOURCES

    rows = ["| source | `--source` | options it takes |", "|---|---|---|"]
    for s in SOURCES:
        rows.append(f"| `{s.name}` | {_cell(s.description)} | {', '.join(f'`--{o}`' for o in s.options)} |")
    return "\n".join(rows)


def sinks() -> str:
    from edgekit.runtime.sinks import SINKS

    rows = ["| sink | asked for by | what it is |", "|---|---|---|"]
    for k in SINKS:
        takes = " ".join(k.suffixes) or ("a folder" if k.matches else "a flag")
        rows.append(f"| `{k.name}` | {_cell(takes)} | {_cell(k.description)} |")
    return "\n".join(rows)


GENERATED = {
    "cli": cli_reference,
    "recipes": recipes,
    "formats": formats,
    "backends": backends,
    "file-kinds": file_kinds,
    "tasks": tasks,
    "sources": sources,
    "sinks": sinks,
}


def on_page_markdown(markdown: str, **_: object) -> str:
    def fill(match: re.Match) -> str:
        name = match.group(1)
        if name not in GENERATED:
            raise KeyError(f"no generated part named {name!r}: known {', '.join(GENERATED)}")
        return GENERATED[name]()

    return MARKER.sub(fill, markdown)
