"""The time `edgekit bench --on HOST` adds around the device's own benchmark (probe, copy, start,
fetch), for the quickstart's four files, against what a user does by hand over the same SSH:

    scp FILES host:dir/ && ssh host edgekit bench dir/FILES --out dir/r.json && scp host:dir/r.json .

and against the same bench run here with no SSH at all. The device is this machine through a real
OpenSSH server started for the measure (tests/sshd_server.py: a loopback port, its own keys), so the
figures are the cost of edgekit's layer and of ssh, not of a network. Each side's overhead is its wall
time less the device's `edgekit bench` time, read on the device (`date` around it by hand; the
script's own markers for `--on`). `--on` runs twice per round: with an empty cache (first run: the
files are sent) and again (cached: the bytes sent must be 0). Rounds alternate the order of the
sides. A script that prints and saves, never asserts.

    python bench/remote_overhead.py --rounds 5 --json bench/results/remote-overhead.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from sshd_server import Sshd, missing  # noqa: E402

BENCH = ["--runs", "50", "--warmup", "5", "--eval-samples", "100"]
FILES = ["model.tflite", "model_int8.tflite", "model.onnx", "model_int8.onnx"]


def edgekit_cmd() -> list[str]:
    return [sys.executable, "-m", "edgekit.cli"]


def run(cmd: list[str], **kw) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:6])} ... failed ({proc.returncode}): {proc.stderr[-1500:]}")
    return wall, proc


def quickstart(folder: Path | None, work: Path) -> Path:
    if folder is not None:
        return folder
    out = work / "quickstart"
    print("edgekit quickstart (1 epoch: the files are for timing, not accuracy) ...", file=sys.stderr)
    run([*edgekit_cmd(), "quickstart", "--out", str(out), "--epochs", "1", "--runs", "20"])
    return out


def by_hand(files: list[Path], ssh: list[str], scp: list[str], remote_dir: str, out: Path) -> dict:
    """scp, ssh edgekit bench with `date` around it, scp back: wall and the device's bench time."""
    t0 = time.perf_counter()
    subprocess.run([*ssh, f"rm -rf {remote_dir} && mkdir -p {remote_dir}"], check=True)
    subprocess.run([*scp, *map(str, files), f"127.0.0.1:{remote_dir}/"], check=True)
    names = " ".join(f"{remote_dir}/{f.name}" for f in files)
    inner = (
        f"date +%s.%N >&2; edgekit bench {names} {' '.join(BENCH)} --out {remote_dir}/r.json >/dev/null; "
        "rc=$?; date +%s.%N >&2; exit $rc"
    )
    proc = subprocess.run([*ssh, inner], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"the bench by hand failed: {proc.stderr[-1000:]}")
    stamps = [float(x) for x in re.findall(r"^(\d+\.\d+)$", proc.stderr, re.M)]
    subprocess.run([*scp, f"127.0.0.1:{remote_dir}/r.json", str(out)], check=True)
    wall = time.perf_counter() - t0
    bench = stamps[-1] - stamps[0]
    return {"wall_s": wall, "bench_s": bench, "overhead_s": wall - bench}


def on_host(files: list[Path], cwd: Path, fresh_cache: bool, cache: Path) -> dict:
    if fresh_cache:
        shutil.rmtree(cache, ignore_errors=True)
    wall, proc = run(
        [*edgekit_cmd(), "bench", *map(str, files), *BENCH, "--on", "box", "--out", "results", "--json"],
        cwd=cwd,
    )
    (host,) = json.loads(proc.stdout)["hosts"]
    s = host["seconds"]
    return {
        "wall_s": wall,
        "bench_s": s["bench"],
        "overhead_s": wall - s["bench"],
        "steps_s": s,
        "files_sent": host["files_sent"],
        "bytes_sent": host["bytes_sent"],
    }


def local(files: list[Path], cwd: Path) -> dict:
    wall, _ = run([*edgekit_cmd(), "bench", *map(str, files), *BENCH, "--no-save"], cwd=cwd)
    return {"wall_s": wall}


def med(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quickstart", type=Path, help="a folder the quickstart made (default: make one)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if missing():
        raise SystemExit(missing())
    work = Path(tempfile.mkdtemp(prefix="edgekit-remote-overhead-"))
    try:
        qs = quickstart(args.quickstart, work)
        files = [qs / f for f in FILES]
        server = Sshd(work, f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin")
        try:
            config = server.config()
            cache = work / "device-cache"
            (work / "edgekit-hosts.toml").write_text(
                f'[box]\nssh = "ssh://127.0.0.1:{server.port}"\nssh_config = "{config}"\nworkdir = "{cache}"\n'
            )
            # the same client settings as edgekit's, so both sides pay for the same ssh
            opts = ["-F", str(config), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"]
            ssh = ["ssh", *opts, "-p", str(server.port), "127.0.0.1"]
            scp = ["scp", "-q", *opts, "-P", str(server.port)]
            sides: dict[str, list[dict]] = {"local": [], "by_hand": [], "on_first": [], "on_cached": []}
            load = [os.getloadavg()[0]]
            for i in range(args.rounds):
                order = ["local", "by_hand", "on"] if i % 2 == 0 else ["on", "by_hand", "local"]
                for side in order:
                    if side == "local":
                        sides["local"].append(local(files, work))
                    elif side == "by_hand":
                        sides["by_hand"].append(
                            by_hand(files, ssh, scp, str(work / "by-hand"), work / "r.json")
                        )
                    else:
                        sides["on_first"].append(on_host(files, work, True, cache))
                        sides["on_cached"].append(on_host(files, work, False, cache))
                print(f"round {i + 1}/{args.rounds} done", file=sys.stderr)
            load.append(os.getloadavg()[0])
        finally:
            server.stop()
        flags = sorted(set(re.findall(r"avx512[a-z_]*|avx2|vnni", Path("/proc/cpuinfo").read_text())))
        size = sum(f.stat().st_size for f in files)
        doc = {
            "rounds": args.rounds,
            "files": FILES,
            "bytes_of_files": size,
            "bench_options": BENCH,
            "cpu_flags": flags,
            "cores": os.cpu_count(),
            "load_average_before_after": load,
            "median_s": {
                "local_bench_wall": med(sides["local"], "wall_s"),
                "by_hand_overhead": med(sides["by_hand"], "overhead_s"),
                "on_first_overhead": med(sides["on_first"], "overhead_s"),
                "on_cached_overhead": med(sides["on_cached"], "overhead_s"),
                "by_hand_wall": med(sides["by_hand"], "wall_s"),
                "on_first_wall": med(sides["on_first"], "wall_s"),
                "on_cached_wall": med(sides["on_cached"], "wall_s"),
                "device_bench": med(sides["on_cached"], "bench_s"),
            },
            "bytes_sent": {
                "on_first": [r["bytes_sent"] for r in sides["on_first"]],
                "on_cached": [r["bytes_sent"] for r in sides["on_cached"]],
            },
            "runs": sides,
        }
        m = doc["median_s"]
        doc["ratios"] = {
            "on_first_overhead / by_hand_overhead": m["on_first_overhead"] / m["by_hand_overhead"],
            "on_cached_overhead / by_hand_overhead": m["on_cached_overhead"] / m["by_hand_overhead"],
            "on_cached_wall / local_bench_wall": m["on_cached_wall"] / m["local_bench_wall"],
        }
        print(json.dumps({k: doc[k] for k in ("median_s", "ratios", "bytes_sent", "cpu_flags")}, indent=1))
        if args.json:
            args.json.write_text(json.dumps(doc, indent=1) + "\n")
            print(f"saved {args.json}", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
