"""docker/test-images.sh and docker/test-arm64.sh: they parse, and their prerequisites check runs,
says what is missing in one line each, and does nothing else (no cache folder made)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ["docker/test-images.sh", "docker/test-arm64.sh"]

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def _run(script: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(ROOT / script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize("script", [*SCRIPTS, "docker/lib.sh", "docker/edgekit.sh"])
def test_scripts_parse(script):
    proc = subprocess.run(["bash", "-n", str(ROOT / script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("script", SCRIPTS)
def test_check_reports_prerequisites_and_does_nothing_else(script, tmp_path):
    cache = tmp_path / "cache"
    proc = _run(script, "--check", "--cache", str(cache))
    lines = proc.stderr.strip().splitlines()
    if proc.returncode == 0:
        assert lines == [f"prerequisites: all present (cache: {cache})"]
    else:
        assert proc.returncode == 1
        assert lines and all(line.startswith("missing: ") for line in lines), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not cache.exists()


@pytest.mark.parametrize("script", SCRIPTS)
def test_check_names_an_unreachable_package_archive(script, tmp_path):
    proc = _run(
        script, "--check", "--cache", str(tmp_path / "c"), env={"DEBIAN_MIRROR": "http://127.0.0.1:9/debian"}
    )
    assert proc.returncode == 1
    assert "missing: no package archive: http://127.0.0.1:9/debian/dists/bookworm/Release" in proc.stderr


@pytest.mark.parametrize("script", SCRIPTS)
def test_an_unknown_argument_is_one_sentence(script):
    proc = _run(script, "--frobnicate")
    assert proc.returncode == 1
    assert proc.stderr.strip() == "error: unknown argument --frobnicate (see --help)"


def test_requirements_swap_opencv_and_onnxruntime_for_the_images():
    def reqs(*args: str) -> list[str]:
        out = subprocess.run(
            ["python3", str(ROOT / "docker/requirements.py"), *args],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return [r.split(";")[0].strip() for r in out.splitlines()]

    base = reqs()
    assert "opencv-python>=4.10,<5" in base and "onnxruntime>=1.17" in base
    pi = reqs("--headless")
    assert "opencv-python-headless>=4.10,<5" in pi and not any(r.startswith("tensorflow") for r in pi)
    gpu = reqs("--headless", "--gpu")
    assert "onnxruntime-gpu[cuda,cudnn]>=1.21" in gpu and not any(r.startswith("onnxruntime>") for r in gpu)
    assert any(r.startswith("tensorflow-cpu") for r in reqs("--extra", "train"))


def test_slim_takes_what_it_lists_and_the_tree_still_imports(tmp_path):
    """docker/slim.py on a real installed numpy: its test suites, headers, static libraries and stubs
    go, and numpy still imports and computes from what is left."""
    np_dir = Path(__import__("numpy").__file__).parent
    tree = tmp_path / "site"
    shutil.copytree(np_dir, tree / "numpy", ignore=shutil.ignore_patterns("__pycache__"))
    if (np_dir.parent / "numpy.libs").is_dir():
        shutil.copytree(np_dir.parent / "numpy.libs", tree / "numpy.libs")
    before = sum(p.stat().st_size for p in tree.rglob("*") if p.is_file())
    proc = subprocess.run(
        [sys.executable, str(ROOT / "docker/slim.py"), str(tree)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert "removed" in proc.stdout and f"freed in {tree}" in proc.stdout
    assert not list(tree.glob("**/tests")) and not list(tree.glob("**/*.pyi"))
    assert not (tree / "numpy/_core/include").exists()
    assert sum(p.stat().st_size for p in tree.rglob("*") if p.is_file()) < before
    check = subprocess.run(
        [sys.executable, "-c", "import numpy as np; print(np.__file__, np.linalg.inv(np.eye(3) * 2).sum())"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"},
        cwd=tmp_path,
        timeout=120,
    )
    assert check.returncode == 0, check.stderr
    assert check.stdout.split() == [str(tree / "numpy" / "__init__.py"), "1.5"]


def test_slim_needs_a_folder(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "docker/slim.py"), str(tmp_path / "nowhere")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1 and "python3 docker/slim.py DIR" in proc.stderr


def _digest(*paths: Path) -> str:
    proc = subprocess.run(
        ["bash", "-c", 'source "$0" && digest "$@"', str(ROOT / "docker/lib.sh"), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_the_test_cache_key_follows_contents_not_timestamps(tmp_path):
    """test-arm64.sh reuses a passing test run while the digest of the wheel and the tests is the
    same: a rebuild of the same sources (other zip timestamps) keeps it, any changed byte does not."""
    import zipfile

    def wheel(name: str, body: bytes, when: tuple) -> Path:
        path = tmp_path / name
        with zipfile.ZipFile(path, "w") as z:
            z.writestr(zipfile.ZipInfo("edgekit/core.py", date_time=when), body)
            z.writestr(zipfile.ZipInfo("edgekit-0.dist-info/RECORD", date_time=when), b"record")
        return path

    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_a.py").write_text("def test(): pass\n")
    first = _digest(wheel("a.whl", b"x = 1\n", (2026, 1, 1, 0, 0, 0)), tests)
    assert len(first) == 16
    assert _digest(wheel("b.whl", b"x = 1\n", (2026, 11, 27, 8, 0, 0)), tests) == first
    (tests / "__pycache__").mkdir()
    (tests / "__pycache__" / "test_a.pyc").write_bytes(b"compiled")
    assert _digest(tmp_path / "b.whl", tests) == first
    assert _digest(wheel("c.whl", b"x = 2\n", (2026, 1, 1, 0, 0, 0)), tests) != first
    (tests / "test_a.py").write_text("def test(): assert 1\n")
    assert _digest(tmp_path / "a.whl", tests) != first


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_is_the_scripts_opening_comment(script):
    proc = _run(script, "--help")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines and all(line.startswith("#") for line in lines)
    assert "--check" in proc.stdout and "--cache" in proc.stdout
