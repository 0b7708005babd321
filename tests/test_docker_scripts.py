"""docker/test-images.sh and docker/test-arm64.sh: they parse, and their prerequisites check runs,
says what is missing in one line each, and does nothing else (no cache folder made). Their Python
steps run against an installed edgekit from a copy of the checkout with no .venv, as on a fresh
clone, where the checkout's partial edgekit/ folder must not shadow the installed package."""

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


def _run(script: str, *args: str, env: dict | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """The script as a user starts it from `cwd` (the checkout's root unless told)."""
    return subprocess.run(
        ["bash", os.path.relpath(ROOT / script, cwd), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


@pytest.mark.parametrize("script", [*SCRIPTS, "docker/lib.sh", "bench/gpu_check.sh"])
def test_scripts_parse(script):
    proc = subprocess.run(["bash", "-n", str(ROOT / script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("script", SCRIPTS)
def test_check_reports_prerequisites_and_does_nothing_else(script, tmp_path):
    # a relative --cache is taken from where the script was started (the scripts run in a folder of
    # their own, outside the checkout)
    cache = Path(os.path.realpath(tmp_path)) / "cache"
    proc = _run(script, "--check", "--cache", "cache", cwd=tmp_path)
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


# -- the Python steps, against an installed edgekit, from a fresh checkout -----------------------


def _copy_checkout(dest: Path) -> None:
    """What a clone of this checkout holds, with the working tree's edits: the files git tracks or
    would (no .venv, build outputs or caches)."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        timeout=60,
    )
    if listed.returncode != 0:  # not a git checkout: everything but what .gitignore names
        ignore = shutil.ignore_patterns(
            ".git", ".venv", "__pycache__", "*.egg-info", "build", "dist", ".gpu*", "runs"
        )
        shutil.copytree(ROOT, dest, ignore=ignore)
        return
    for name in filter(None, listed.stdout.decode().split("\0")):
        if (ROOT / name).is_file():  # a file deleted in the working tree is listed but gone
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)


@pytest.fixture(scope="module")
def fresh_clone(tmp_path_factory) -> tuple[Path, Path]:
    """(a copy of the checkout with no .venv, a cache folder whose venv-x86 holds the wheel built from
    it): what docker/lib.sh's host_python falls back to on a fresh clone. The venv is made offline:
    the wheel is built with this environment's setuptools (as tests/test_packaging.py does) and
    installed with --no-deps; its dependencies (TensorFlow, OpenCV, numpy) are this environment's
    site-packages, added by a .pth file, which puts them on the path but runs none of their .pth
    files, so this environment's editable edgekit is not mapped in."""
    pytest.importorskip("setuptools")
    base = tmp_path_factory.mktemp("fresh")
    clone = base / "edgekit"
    _copy_checkout(clone)
    wheels = base / "wheel"
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    proc = subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", str(clone), "-w", str(wheels)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (whl,) = wheels.glob("edgekit-*.whl")
    shutil.rmtree(clone / "build", ignore_errors=True)
    for info in clone.glob("*.egg-info"):
        shutil.rmtree(info)
    cache = base / "cache"
    venv = cache / "venv-x86"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    here = [p for p in sys.path if Path(p).name == "site-packages"]
    (site,) = Path(venv, "lib").glob("python3*/site-packages")
    (site / "project-site-packages.pth").write_text("\n".join(here) + "\n")
    proc = subprocess.run(
        [
            str(venv / "bin/python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "--no-deps",
            "--no-index",
            "--ignore-installed",
            str(whl),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (site / "edgekit" / "runtime" / "__init__.py").is_file()
    return clone, cache


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment less what would hide the fault (a safe path set by the caller,
    another venv or edgekit on PYTHONPATH)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONSAFEPATH", "PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, **extra}


def test_the_inputs_step_runs_on_an_installed_edgekit_from_a_fresh_clone(fresh_clone, tmp_path):
    """test-images.sh's inputs step, run from the root of a checkout with no .venv as a new user
    would: host_python falls back to the cache's venv (a regular install), and `python -` from the
    checkout's root must still import that install, not the checkout's edgekit/ folder (which has no
    runtime/: pyproject maps it in)."""
    import cv2

    clone, cache = fresh_clone
    quickstart = tmp_path / "quickstart"
    quickstart.mkdir()
    shutil.copy(clone / "runtime/assets/face_detection_short_range.tflite", quickstart / "model_int8.tflite")
    (quickstart / "model_int8.onnx").write_bytes(b"not read by this step")
    inputs = tmp_path / "inputs"
    proc = subprocess.run(
        [
            "bash",
            "-c",
            'source docker/lib.sh && host_python && make_inputs "$0" "$1"',
            str(inputs),
            str(quickstart),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=clone,
        env=_clean_env(EDGEKIT_DOCKER_CACHE=str(cache)),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == [str(cache / "venv-x86/bin/python")]  # not made anew: no download
    assert sorted(p.name for p in (inputs / "models").iterdir()) == [
        "face_detection_short_range.tflite",
        "model_int8.onnx",
        "model_int8.tflite",
    ]
    digits = sorted((inputs / "digits").glob("digit_*_label_*.png"))
    assert len(digits) == 8
    assert all(cv2.imread(str(d), cv2.IMREAD_GRAYSCALE).shape == (28, 28) for d in digits)
    assert cv2.imread(str(inputs / "face.png")) is not None


def test_the_pi_images_edgekit_command_ignores_a_checkout_in_its_working_folder(fresh_clone):
    """The Pi image's `edgekit` (the file Dockerfile.pi copies to /usr/local/bin/edgekit), run with a
    checkout as its working folder (`docker run -v "$PWD:/work"` from a clone's root): the installed
    edgekit answers, not the checkout's partial edgekit/ folder."""
    import re

    clone, cache = fresh_clone
    (launcher,) = re.findall(
        r"^COPY (docker/\S+) /usr/local/bin/edgekit$", (clone / "docker/Dockerfile.pi").read_text(), re.M
    )
    venv_bin = cache / "venv-x86/bin"
    proc = subprocess.run(
        [str(clone / launcher), "--version"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=clone,
        env=_clean_env(PATH=f"{venv_bin}:{os.environ['PATH']}"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "0.1.0" in proc.stdout
