"""The documentation site builds with `mkdocs build --strict` (a broken link, a missing page or a
docstring mkdocstrings cannot find fails it), and the parts the code knows are generated from it:
every command of the CLI and every recipe, format, backend, source and sink of the registries."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def text_of(page: Path) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.read_text())))


def test_the_site_builds_strictly_and_says_what_the_code_holds(tmp_path):
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    import typer.main

    from edgekit.cli import app
    from edgekit.export.base import exporter_names
    from edgekit.models.recipe import recipe_names
    from edgekit.runtime.backends import BACKENDS
    from edgekit.runtime.sources import SOURCES

    cli = text_of(site / "cli" / "index.html")
    for name in typer.main.get_command(app).commands:
        assert f"edgekit {name}" in cli, name
    assert "--quantize" in cli and "--source" in cli
    recipes = text_of(site / "recipes" / "index.html")
    assert all(name in recipes for name in recipe_names())
    assert all(name in text_of(site / "export" / "index.html") for name in exporter_names())
    run = text_of(site / "run" / "index.html")
    assert all(b.name in run for b in BACKENDS) and all(s.name in run for s in SOURCES)
    api = text_of(site / "api" / "index.html")
    assert "Opens a model, reads its card" in api  # Predictor's docstring, read from the source
    assert not (site / "hooks.py").exists()
