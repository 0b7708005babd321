"""Nothing left behind: temporary folders carry their process's id and go at exit or, after a kill,
at the next start; `edgekit export` killed at random moments leaves the target whole or absent, and
the next run leaves no part file and nothing in the temp folder."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time

from edgekit.fileio import remove_stale_temp, temp_dir, temporary_dir
from edgekit.runtime.files import read_card

EDGEKIT = [sys.executable, "-m", "edgekit.cli"]


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temp_folders_of_dead_processes_go_and_live_ones_stay(tmp_path):
    dead = tmp_path / f"edgekit-export-pid{dead_pid()}-x1"
    live = tmp_path / f"edgekit-export-pid{os.getpid()}-x2"
    unmarked = tmp_path / "edgekit-export-x3"  # an older edgekit's, with no pid: not ours to judge
    other = tmp_path / f"someone-pid{dead_pid()}-x4"
    for folder in (dead, live, unmarked, other):
        (folder / "sub").mkdir(parents=True)
        (folder / "sub" / "file").write_bytes(b"x")
    assert remove_stale_temp(tmp_path) == [dead]
    assert not dead.exists() and live.exists() and unmarked.exists() and other.exists()


def test_temporary_folders_are_named_for_their_process_and_removed(tmp_path):
    folder = temp_dir("trial", parent=tmp_path)
    assert folder.name.startswith(f"edgekit-trial-pid{os.getpid()}-") and folder.is_dir()
    try:
        with temporary_dir("export") as inner:
            assert inner.name.startswith(f"edgekit-export-pid{os.getpid()}-")
            (inner / "f").write_bytes(b"x")
            raise RuntimeError("a failed export")
    except RuntimeError:
        pass
    assert not inner.exists()
    # one made and not removed by its caller goes when the process exits
    code = "from edgekit.fileio import temp_dir; print(temp_dir('left'), flush=True)"
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip().startswith(str(tmp_path)) and not os.path.exists(out.stdout.strip())


def test_export_killed_at_random_moments_leaves_no_leftovers(trained, tmp_path):
    """SIGKILL `edgekit export` at three random moments (seeded) of its run: the target is absent
    or a complete, validated model each time; the next export's start clears the dead runs'
    temporary folders and part files, and its own exit leaves the temp folder empty (TensorFlow's
    autograph files included)."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    target = tmp_path / "out" / "model.tflite"
    env = {**os.environ, "TMPDIR": str(tmp), "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = [*EDGEKIT, "export", str(trained), "--to", "tflite", "--out", str(target), "--force"]
    # the moments are fractions of this machine's own export time: fixed seconds were all after
    # the end on a quiet machine, and would all be before the writing on a slow one
    start = time.perf_counter()
    timed = [*cmd[:-3], "--out", str(tmp_path / "timed" / "model.tflite")]
    subprocess.run(timed, capture_output=True, env=env, check=True, timeout=600)
    seconds = time.perf_counter() - start
    rng = random.Random(17)
    outcomes, killed = [], 0
    for _ in range(3):
        proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True
        )
        time.sleep(rng.uniform(0.3, 0.95) * seconds)
        killed += proc.poll() is None
        with contextlib.suppress(ProcessLookupError):  # a quick machine may have finished the export
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if target.exists():
            assert read_card(target).parity["passed"], "a target is a complete, validated model"
            outcomes.append("whole")
        else:
            outcomes.append("absent")
        # the dead process's folder is left (nothing of it ran), named for it
        assert all(p.name.startswith("edgekit-cli-pid") for p in tmp.iterdir()), list(tmp.iterdir())
    assert killed, f"every export had finished before its kill: {outcomes}"
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    assert read_card(target).parity["passed"]
    assert list(tmp.iterdir()) == [], "the temp folder is left empty"
    assert [p.name for p in target.parent.iterdir()] == ["model.tflite"], "no part file is left"
