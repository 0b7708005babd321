"""`edgekit bench --on HOST`: through a real OpenSSH server started by the test (as the current user,
on a free loopback port, its PATH this checkout's venv), the rows equal a local bench's; files go by
digest and a second run sends none; one device runs one bench at a time; each failure is the host's
row and one sentence; a remote killed mid-run and Ctrl-C keep the rows finished, and leave no
process on the device."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pytest
from sshd_server import Sshd, keygen, missing

from edgekit.benchmark.results import load_result
from edgekit.errors import ConfigError, UnknownNameError
from edgekit.remote import device
from edgekit.remote.hosts import Host, load_hosts, parse_target, resolve

ASSETS = Path(__file__).resolve().parents[1] / "runtime" / "assets"
MODELS = [
    ASSETS / "face_detection_short_range.tflite",
    ASSETS / "face_detection_front_128x128_barracuda.onnx",
]
VENV_BIN = str(Path(sys.executable).parent)
QUICK = ["--runs", "20", "--warmup", "2", "--eval-samples", "10"]
SLOWER = ["--runs", "1000", "--warmup", "2"]  # rows of a few seconds: long enough to interrupt one

needs_sshd = pytest.mark.skipif(missing() is not None, reason=str(missing()))


def edgekit(*args, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    """The `edgekit` command a user runs (its own process: Ctrl-C and exit codes are real)."""
    return subprocess.run(
        [sys.executable, "-m", "edgekit.cli", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def processes() -> list[tuple[int, int, str]]:
    out = subprocess.run(["ps", "-ww", "-eo", "pid=,sid=,args="], capture_output=True, text=True).stdout
    return [(int(p), int(s), a) for p, s, a in (ln.split(None, 2) for ln in out.splitlines() if ln.strip())]


def device_sessions(cache: Path) -> set[int]:
    """The sessions of the device-side script (sshd makes each command a session of its own): the
    bench and each row's child run in it, even those whose command line does not name the cache."""
    return {sid for pid, sid, args in processes() if args.startswith("sh -c") and str(cache) in args}


def left_in(sessions: set[int], seconds: float = 10) -> list[str]:
    """What is still running in those sessions after up to `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        left = [f"{pid} {args[:120]}" for pid, sid, args in processes() if sid in sessions]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("remote")
    sshd = Sshd(root, f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin")
    yield sshd
    sshd.stop()


def hosts_file(folder: Path, text: str) -> Path:
    path = folder / "edgekit-hosts.toml"
    path.write_text(text)
    return path


# --- targets and the hosts file (no server) --------------------------------------------------------


def test_targets_and_the_hosts_file(tmp_path):
    h = parse_target("ssh://pi@pi5.local:2222")
    assert (h.kind, h.destination, h.port, h.name) == ("ssh", "pi@pi5.local", 2222, "pi5.local:2222")
    assert parse_target("docker://edgekit:pi").docker == "edgekit:pi"
    assert parse_target("local").edgekit[0] == sys.executable
    with pytest.raises(ConfigError, match="no password"):
        parse_target("ssh://pi:secret@pi5")
    path = hosts_file(
        tmp_path,
        '[pi5]\nssh = "pi@pi5.local"\nedgekit = "~/edgekit/bin/edgekit"\nssh_config = "cfg"\n'
        '[gpu-box]\nssh = "ssh://me@gpu:2200"\ndocker = "edgekit:gpu"\ndocker_args = ["--gpus", "all"]\n'
        "[laptop]\nlocal = true\n",
    )
    hosts = load_hosts(path)
    assert hosts["pi5"].edgekit == ("~/edgekit/bin/edgekit",) and hosts["pi5"].ssh_config == tmp_path / "cfg"
    assert (hosts["gpu-box"].port, hosts["gpu-box"].docker_args) == (2200, ("--gpus", "all"))
    assert hosts["laptop"].kind == "local"
    assert [h.name for h in resolve(["pi5", "local", "ssh://x"], path)] == ["pi5", "local", "x"]
    with pytest.raises(UnknownNameError, match="did you mean pi5"):
        resolve(["pi4"], path)
    hosts_file(tmp_path, '[pi5]\nssh = "pi@pi5"\nedgkit = "x"\n')
    with pytest.raises(ConfigError, match="unknown key 'edgkit' \\(did you mean edgekit"):
        load_hosts(tmp_path / "edgekit-hosts.toml")


def test_the_docker_command_mounts_the_cache_and_stops_its_container():
    """What `docker://IMAGE` runs (the daemon-backed run is test_docker_host_runs_a_bench)."""
    staged = [device.Staged("/x/m.tflite", "ab" * 32, "m.tflite")]
    host = Host("pi", "docker", docker="edgekit:pi", docker_args=("--platform", "linux/arm64"))
    script = device.run_script(host, staged, device.bench_args(staged, ["--runs", "5"], True), "r1")
    assert (
        'docker run --rm --name edgekit-bench-r1 --network none --user "$(id -u):$(id -g)" -e HOME=/tmp '
        '-v "$W/files:$W/files:ro" -v "$R:$R" --platform linux/arm64 edgekit:pi edgekit bench '
        f'"$W/files/"{"ab" * 32}/m.tflite --runs 5 --out "$R/result.json" --stream-rows' in script
    )
    assert "docker rm -f edgekit-bench-r1" in script and "docker image inspect edgekit:pi" in script
    proc = subprocess.run(["sh", "-n", "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def _row(name: str, p50: float, *, metric: float | None = 0.98, size: int = 100_000, threads=None, seed=0):
    import numpy as np

    from edgekit.benchmark.results import BenchRow

    samples = np.random.default_rng(seed).normal(p50, p50 * 0.02, 200).tolist()
    return BenchRow(
        model=name, backend="litert" if name.endswith("tflite") else "onnxruntime", device="cpu", format="",
        quantization="int8" if "int8" in name else "fp32", size_bytes=size, load_ms=1, first_ms=1,
        p50_ms=p50, p90_ms=p50 * 1.1, p99_ms=p50 * 1.2, mean_ms=p50, runs=200, threads=threads, accuracy=metric,
        accuracy_samples=100, extra={"samples_ms": samples}, metric="accuracy", metric_value=metric,
        ci_low_ms=p50 * 0.99, ci_high_ms=p50 * 1.01, bar_points=1.0,
    )  # fmt: skip


def test_which_file_to_deploy_where():
    from edgekit.benchmark.compare import merge
    from edgekit.benchmark.results import BenchResult
    from edgekit.remote import advice

    pi = [
        _row("model.tflite", 2.0, size=400_000, threads=4),
        _row("model_int8.tflite", 1.0, metric=0.97, threads=4),  # fastest, 1 point down: within its bar
        _row("model_int8.onnx", 1.02, metric=0.97, threads=4, seed=1),  # 2% slower: close, tested
        _row("model_quant.tflite", 0.5, metric=0.90, size=50_000, threads=4),  # faster but misses the bar
    ]
    gpu = [_row("model.onnx", 0.3, size=400_000), _row("model_int8.onnx", 0.6)]
    c = merge(
        [
            BenchResult(Path("pi5"), {"hostname": "pi5"}, pi, 2),
            BenchResult(Path("g"), {"hostname": "gpu-box"}, gpu, 2),
        ]
    )
    a_pi, a_gpu = advice.advise(c)
    assert Path(a_pi.fastest.model).name == "model_int8.tflite"
    assert Path(a_pi.runner_up.model).name == "model_int8.onnx" and a_pi.p_runner_up is not None
    assert Path(a_pi.smallest.model).name == "model_int8.tflite"  # model_quant is smaller but misses its bar
    assert Path(a_gpu.fastest.model).name == "model.onnx" and a_gpu.runner_up is None
    text = "\n".join(advice.lines([a_pi, a_gpu]))
    assert (
        "the choice differs between hosts: pi5: use model_int8.tflite on litert/cpu, 4 threads; "
        "gpu-box: use model.onnx on onnxruntime/cpu" in text
    )
    assert "1 ms (95% CI 0.99-1.01)" in text and "Mann-Whitney p" in text
    # a second Pi where int8 ONNX is faster by 0.1%, which its test does not tell apart: one choice
    pi_b = [
        _row("model_int8.tflite", 1.0, threads=4, seed=2),
        _row("model_int8.onnx", 0.999, threads=4, seed=3),
    ]
    both = merge(
        [
            BenchResult(Path("a"), {"hostname": "pi5"}, pi, 2),
            BenchResult(Path("b"), {"hostname": "pi5b"}, pi_b, 2),
        ]
    )
    tips = advice.advise(both)
    assert Path(tips[1].fastest.model).name == "model_int8.onnx" and tips[1].p_runner_up >= 0.05
    assert advice.differs(tips) == "every host: use model_int8.tflite on litert/cpu, 4 threads"
    md = advice.markdown([a_pi, a_gpu])
    assert md.splitlines()[2].startswith("| pi5 | `model_int8.tflite on litert/cpu, 4 threads` | 1 ms")


# --- through a real sshd ---------------------------------------------------------------------------


@needs_sshd
def test_ssh_rows_equal_a_local_bench_and_a_second_run_sends_nothing(server, tmp_path):
    broken = tmp_path / "broken.onnx"  # a file no device can open: that row's reason, the rest go on
    broken.write_bytes(b"not an onnx model" * 10)
    cache = tmp_path / "device-cache"
    config = server.config()
    # two names for one device (one cache, one lock): their benches must not overlap
    hosts_file(
        tmp_path,
        f'[box]\nssh = "ssh://127.0.0.1:{server.port}"\nssh_config = "{config}"\nworkdir = "{cache}"\n'
        f'[box-again]\nssh = "ssh://127.0.0.1:{server.port}"\nssh_config = "{config}"\nworkdir = "{cache}"\n',
    )
    r = edgekit("bench", *MODELS, broken, *QUICK, "--on", "local", "--on", "box", "--on", "box-again",
                "--out", "results", "--json", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    status = {h["host"]: h for h in doc["hosts"]}
    assert [h["status"] for h in doc["hosts"]] == ["measured"] * 3
    # the first of box / box-again sent the three files, the other found them there
    assert sorted(status[h]["files_sent"] for h in ("box", "box-again")) in ([0, 3], [3, 3])
    for s in MODELS + [broken]:
        digest = hashlib.sha256(s.read_bytes()).hexdigest()
        assert (cache / "files" / digest / s.name).read_bytes() == s.read_bytes()
    assert r.stderr.count("another edgekit bench holds this device") == 1, r.stderr
    assert "[box] [1/3]" in r.stderr and "[local] [3/3]" in r.stderr  # progress streamed, by host
    local, box = (load_result(Path(status[h]["result"]) if Path(status[h]["result"]).is_absolute()
                              else tmp_path / status[h]["result"]) for h in ("local", "box"))  # fmt: skip
    assert [r.key for r in local.rows] == [r.key for r in box.rows]
    for a, b in zip(local.rows, box.rows, strict=True):
        assert set(asdict(a)) == set(asdict(b))
        same = (
            "backend",
            "device",
            "format",
            "quantization",
            "size_bytes",
            "threads",
            "batch",
            "task",
            "runs",
        )
        assert [getattr(a, f) for f in same] == [getattr(b, f) for f in same]
        if a.error is None:
            assert b.error is None and len(b.extra["samples_ms"]) == 20
            assert 0.2 < b.p50_ms / a.p50_ms < 5  # the same machine: figures within noise
        else:
            assert Path(a.model).name == "broken.onnx" and b.error
    assert box.host["cpu"] and box.host["versions"]  # the device's host record came back
    saved = Path(tmp_path / status["box"]["result"]).read_text()
    assert json.loads(saved)["on"]["name"] == "box"
    for secret in (server.client_key.read_text().splitlines()[1], str(server.client_key), str(config)):
        assert secret not in saved  # no key, nor where the keys and config are

    # a second run: nothing sent, and a stale lock (a process that is gone) does not stop it;
    # Markdown and a chart as `edgekit compare` gives them
    (cache / "lock").mkdir()
    (cache / "lock" / "pid").write_text("999999\n")
    r = edgekit("bench", MODELS[0], *QUICK, "--on", "box", "--out", "results", "--markdown", "--plot", "chart.png",
                cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "sent no file (1 already there)" in r.stdout and "sending" not in r.stderr
    assert (
        r.stdout.startswith("| row | box p50 ms |")
        and "| host | use (fastest meeting its accuracy bar) |" in r.stdout
    )
    assert (tmp_path / "chart.png").stat().st_size > 0
    assert "holds this device" not in r.stderr and not (cache / "lock").exists()
    assert not list((cache / "runs").iterdir())  # the run folder went with the run


@needs_sshd
def test_each_failure_is_its_row_and_one_sentence(server, tmp_path):
    no_path = Sshd(tmp_path, "/usr/bin:/bin", name="bare")  # a device with no edgekit on its PATH
    try:
        other = keygen(tmp_path / "other_key")
        unknown = tmp_path / "empty_known_hosts"
        unknown.write_text("")
        closed = no_path.port + 1 if no_path.port < 65535 else no_path.port - 1
        hosts_file(
            tmp_path,
            f'[unknown-key]\nssh = "ssh://127.0.0.1:{server.port}"\nssh_config = "{server.config("u", known=unknown)}"\n'
            f'[wrong-key]\nssh = "ssh://127.0.0.1:{server.port}"\nssh_config = "{server.config("w", key=other)}"\n'
            f'[no-edgekit]\nssh = "ssh://127.0.0.1:{no_path.port}"\nssh_config = "{no_path.config()}"\n',
        )
        # the unknown key's config would accept a new key silently: edgekit refuses it all the same
        with open(server.root / "u", "a") as f:
            f.write("  StrictHostKeyChecking accept-new\n")
        r = edgekit("bench", MODELS[0], *QUICK, "--on", f"ssh://127.0.0.1:{closed}", "--ssh-config", no_path.config("c"), "--on", "unknown-key", "--on", "wrong-key",
                    "--on", "no-edgekit", "--out", "results", cwd=tmp_path)  # fmt: skip
    finally:
        no_path.stop()
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    lines = {ln.split(" (", 1)[0].strip(): ln for ln in r.stdout.splitlines() if ": failed: " in ln}
    refused = f"127.0.0.1:{closed}"  # an --on target with the --ssh-config of the command line
    assert set(lines) == {refused, "unknown-key", "wrong-key", "no-edgekit"}, r.stdout
    assert "connection refused" in lines[refused]
    assert f"ssh-keyscan -p {server.port} 127.0.0.1 >> {unknown}" in lines["unknown-key"]
    assert unknown.read_text() == ""  # nothing was accepted
    assert "refused the login" in lines["wrong-key"] and "ssh-copy-id" in lines["wrong-key"]
    assert "no `edgekit` on the PATH" in lines["no-edgekit"] and "pip install edgekit" in lines["no-edgekit"]
    table = r.stdout.split("\n\n")[0].splitlines()
    assert table[1].split()[1:5] == ["failed"] * 4  # the file's row, failed on each host
    assert not (tmp_path / "results").exists()  # no result file with nothing in it


def _start(tmp_path: Path, server: Sshd, cache: Path) -> subprocess.Popen:
    config = server.config()
    hosts_file(
        tmp_path,
        f'[box]\nssh = "ssh://127.0.0.1:{server.port}"\nssh_config = "{config}"\nworkdir = "{cache}"\n',
    )
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edgekit.cli",
            "bench",
            *map(str, MODELS),
            *SLOWER,
            "--on",
            "box",
            "--out",
            "results",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _after_first_row(proc: subprocess.Popen) -> list[str]:
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith("[box] [1/2]"):
            return seen
    raise AssertionError("no row finished: " + "".join(seen))


@needs_sshd
def test_a_remote_killed_mid_run_keeps_its_finished_rows(server, tmp_path):
    cache = tmp_path / "device-cache"
    proc = _start(tmp_path, server, cache)
    try:
        _after_first_row(proc)
        sessions = device_sessions(cache)
        bench = [
            pid
            for pid, sid, args in processes()
            if sid in sessions and " bench " in args and "sh -c" not in args
        ]
        assert len(bench) == 1, [p for p in processes() if p[1] in sessions]
        os.kill(bench[0], signal.SIGKILL)  # as the kernel's out-of-memory killer would
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 1, err
    line = next(ln for ln in out.splitlines() if ln.startswith("  box "))
    assert "killed by SIGKILL mid-run" in line and "out-of-memory" in line and "1 row(s) finished" in line
    (saved,) = (tmp_path / "results").iterdir()
    result = load_result(saved)
    assert len(result.rows) == 1 and result.rows[0].extra["samples_ms"]
    assert not left_in(sessions)  # the orphaned row's child went too


@needs_sshd
def test_ctrl_c_stops_the_remote_run_and_keeps_its_rows(server, tmp_path):
    cache = tmp_path / "device-cache"
    proc = _start(tmp_path, server, cache)
    try:
        _after_first_row(proc)
        sessions = device_sessions(cache)
        assert left_in(sessions, 0)  # the bench runs on the device now
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends (ssh clients have their own sessions)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "box (ssh://127.0.0.1" in out and "interrupted (1 row(s) finished before it are kept)" in out
    (saved,) = (tmp_path / "results").iterdir()
    doc = json.loads(saved.read_text())
    assert doc["interrupted"] is True and len(doc["results"]) == 1
    assert len(load_result(saved).rows) == 1
    assert not left_in(sessions)  # no edgekit, no row's child left on the device
    assert not (cache / "lock").exists()


# --- docker://IMAGE, where a Docker daemon answers -------------------------------------------------


def _docker() -> str | None:
    """Why no container can run here (None: one can)."""
    import shutil

    if shutil.which("docker") is None:
        return "needs docker"
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        return "needs a running Docker daemon (docker info fails)"
    return None


@pytest.mark.skipif(_docker() is not None, reason=str(_docker()))
def test_docker_host_runs_a_bench_and_ctrl_c_leaves_no_container(tmp_path):
    """An image with nothing in it but /tmp, run with this machine's Python and this checkout mounted
    read-only: the files, the user and the result folder are what `docker://` itself passes."""
    import io
    import tarfile
    import uuid

    image = f"edgekit-remote-test:{uuid.uuid4().hex[:8]}"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("tmp")
        info.type, info.mode = tarfile.DIRTYPE, 0o1777
        tar.addfile(info)
    subprocess.run(["docker", "import", "-", image], input=buf.getvalue(), check=True, capture_output=True)
    try:
        root = Path(__file__).resolve().parents[1]
        mounts = {str(root), sys.prefix, sys.base_prefix, "/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc"}
        args = [a for m in sorted(mounts) if Path(m).exists() for a in ("-v", f"{m}:{m}:ro")]
        hosts_file(
            tmp_path,
            f'[img]\ndocker = "{image}"\nedgekit = "{sys.executable} -m edgekit.cli"\n'
            f'workdir = "{tmp_path / "cache"}"\ndocker_args = {json.dumps(args)}\n',
        )
        r = edgekit("bench", *MODELS, *QUICK, "--on", "img", "--out", "results", "--json", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        (host,) = json.loads(r.stdout)["hosts"]
        assert host["status"] == "measured" and host["files_sent"] == 2
        result = load_result(tmp_path / host["result"])
        assert len(result.rows) == 2 and all(row.error is None for row in result.rows)

        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "edgekit.cli",
                "bench",
                *map(str, MODELS),
                *SLOWER,
                "--on",
                "img",
                "--out",
                "r2",
            ],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            for line in proc.stderr:
                if line.startswith("[img] [1/2]"):
                    break
            assert subprocess.run(["docker", "ps", "-q", "--filter", "name=edgekit-bench-"], capture_output=True,
                                  text=True).stdout.strip()  # fmt: skip
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=60)
        finally:
            proc.kill()
        assert proc.returncode == 130
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            left = subprocess.run(["docker", "ps", "-aq", "--filter", "name=edgekit-bench-"], capture_output=True,
                                  text=True).stdout.strip()  # fmt: skip
            if not left:
                break
            time.sleep(0.5)
        assert not left, left
    finally:
        subprocess.run(["docker", "image", "rm", "-f", image], capture_output=True)
