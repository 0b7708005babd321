#!/usr/bin/env bash
# Start-up of `edgekit run` in two Pi images, side by side: BlazeFace (shipped) on one photo, as a
# user of the image starts it, in each image's exported file system under qemu-user-static (arm64,
# QEMU_CPU=cortex-a72), the same way as docker/test-images.sh runs the Pi image.
#
#   bash bench/pi_startup.sh [--runs N] [--cache DIR] [--json FILE] BEFORE AFTER
#
# BEFORE and AFTER are image tags: in the Docker daemon at DOCKER_HOST, or else in one started on the
# cache folder's data, as docker/test-images.sh does, which builds edgekit:pi there (an older image:
# `docker build -f docker/Dockerfile.pi` in another checkout, with the same BASE and BUILD_BASE).
# Runs are paired (BEFORE then AFTER, the order alternating) so that a busy machine slows both
# alike; each is timed from outside (wall, and CPU: user+sys of every process of the run, qemu
# included, which other work on the machine disturbs less than wall). The run's own summary gives the seconds it spent on the frame
# (under qemu, mostly XNNPACK's first inference); what is left is the start-up: Python, the imports,
# the model's load, and the exit. Figures are medians over the runs and the median of the per-pair
# ratios BEFORE/AFTER, with the images' sizes (docker's). Under qemu every figure is several times a
# Pi 4's; the ratios are what carries over. Prints a table; --json FILE saves it all (with the
# host's CPU flags and load). A script that prints, never asserts.
source "$(dirname "$0")/../docker/lib.sh"

RUNS=3
JSON=
ARGS=()
while (($#)); do
    case $1 in
    --runs) RUNS=${2:-}; shift ;;
    --cache) CACHE=$(from_caller "${2:-}"); shift ;;
    --json) JSON=$(from_caller "${2:-}"); shift ;;
    -h | --help) usage; exit 0 ;;
    -*) die "unknown argument $1 (see --help)" ;;
    *) ARGS+=("$1") ;;
    esac
    shift
done
((${#ARGS[@]} == 2)) || die "give two image tags, BEFORE and AFTER (see --help)"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "--runs takes a whole number of at least 1, not '$RUNS'"
[ "$(id -u)" = 0 ] || die "not root: the user namespace's uid maps (and a dockerd, when none runs) need root (run with sudo)"
command -v qemu-aarch64-static >/dev/null || die "no qemu: apt-get install qemu-user-static"
if ! docker version >/dev/null 2>&1; then
    command -v dockerd >/dev/null || die "no Docker daemon running and no dockerd to start one: apt-get install docker.io"
    start_dockerd  # on the cache's data, where docker/test-images.sh left its images
fi
for tag in "${ARGS[@]}"; do
    docker image inspect "$tag" >/dev/null 2>&1 || die "no image $tag in the Docker daemon"
done

OUTDIR=$(mktemp -d "${TMPDIR:-/tmp}/edgekit-pi-startup.XXXXXX")
CLEANUP+=("rm -rf '$OUTDIR'")
IN=$OUTDIR/inputs
mkdir -p "$IN"
cp "$REPO/runtime/assets/face_detection_short_range.tflite" "$IN/"
"$(host_python)" - "$IN/face.png" <<'PYEOF'
import sys

import cv2
import numpy as np

try:  # the photo docker/test-images.sh uses, when scikit-image is installed; else a drawn face
    from skimage.data import astronaut

    img = np.ascontiguousarray(astronaut()[..., ::-1])
except ImportError:
    img = np.full((256, 256, 3), 90, np.uint8)
    cv2.ellipse(img, (128, 120), (60, 80), 0, 0, 360, (120, 160, 220), -1)
cv2.imwrite(sys.argv[1], img)
PYEOF
chmod -R a+rX "$IN"

ROOTS=()
ENVS=()
for i in 0 1; do
    tag=${ARGS[i]}
    root=$CACHE/work/startup-root-$i
    log "exporting $tag into $root"
    rm -rf "$root" && mkdir -p "$root"
    CLEANUP+=("rm -rf '$root'")  # a copy of the image (350 MB): gone at the end
    cid=$(docker create "$tag")
    docker export "$cid" | tar -C "$root" -xf -
    docker rm "$cid" >/dev/null
    ROOTS+=("$root")
    ENVS+=("$(docker image inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$tag" | grep . | tr '\n' ' ')")
    docker image inspect -f '{{.Size}}' "$tag" >"$OUTDIR/size-$i"
done

one_run() {  # one_run I N: image I's `edgekit run` once; its times and summary into $OUTDIR/I-N.*
    local i=$1 n=$2 env
    read -ra env <<<"${ENVS[i]}"
    local TIMEFORMAT='%3R %3U %3S'
    { time EDGEKIT_USERSPEC=1000:1000 arm64_chroot "${ROOTS[i]}" "$IN:/in:ro" -- env "${env[@]}" HOME=/tmp \
        sh -c 'cd /tmp && edgekit run /in/face_detection_short_range.tflite --source /in/face.png --json' \
        >"$OUTDIR/$i-$n.out" 2>"$OUTDIR/$i-$n.err"; } 2>"$OUTDIR/$i-$n.time" ||
        { cat "$OUTDIR/$i-$n.err" >&2; die "edgekit run failed in ${ARGS[i]} (its output is above)"; }
    log "${ARGS[i]} run $n: $(cat "$OUTDIR/$i-$n.time") (wall, user, sys s)"
}

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
for ((n = 1; n <= RUNS; n++)); do
    if ((n % 2)); then one_run 0 "$n" && one_run 1 "$n"; else one_run 1 "$n" && one_run 0 "$n"; fi
done
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$OUTDIR" "$RUNS" "${ARGS[0]}" "${ARGS[1]}" "$LOAD0" "$LOAD1" "$(qemu-aarch64-static --version | head -1)" "$JSON" <<'PYEOF'
import json
import re
import statistics
import sys
from pathlib import Path

out, runs, before, after, load0, load1, qemu, json_path = sys.argv[1:]
out, runs = Path(out), int(runs)


def measured(i: int, n: int) -> dict:
    wall, user, system = (float(x) for x in (out / f"{i}-{n}.time").read_text().split())
    summary = json.loads((out / f"{i}-{n}.out").read_text().strip().splitlines()[-1])["summary"]
    return {
        "wall_s": wall,
        "cpu_s": round(user + system, 3),
        "frame_s": summary["seconds"],
        "startup_wall_s": round(wall - summary["seconds"], 3),
    }


rows = {tag: [measured(i, n) for n in range(1, runs + 1)] for i, tag in enumerate((before, after))}
keys = ["wall_s", "cpu_s", "frame_s", "startup_wall_s"]
medians = {tag: {k: statistics.median(r[k] for r in rows[tag]) for k in keys} for tag in rows}
ratios = {
    k: statistics.median(b[k] / a[k] for b, a in zip(rows[before], rows[after]))
    for k in ("wall_s", "cpu_s", "startup_wall_s")
}
sizes = {tag: int((out / f"size-{i}").read_text()) for i, tag in enumerate((before, after))}
cpuinfo = Path("/proc/cpuinfo").read_text()
flags = sorted(set(re.findall(r"avx512[a-z_]*|avx2|vnni", cpuinfo)))

print(f"{'image':24} {'size MB':>8} {'wall s':>7} {'CPU s':>7} {'frame s':>8} {'start-up s':>10}")
for tag in rows:
    m = medians[tag]
    print(f"{tag:24} {sizes[tag] / 1e6:8.1f} {m['wall_s']:7.2f} {m['cpu_s']:7.2f} {m['frame_s']:8.2f} {m['startup_wall_s']:10.2f}")
print(
    f"{before} / {after} (median of {runs} paired runs): wall {ratios['wall_s']:.2f}x, CPU {ratios['cpu_s']:.2f}x,"
    f" start-up (wall less the frame) {ratios['startup_wall_s']:.2f}x; size {sizes[after] - sizes[before]:+,} bytes"
)
print(f"under {qemu} (QEMU_CPU=cortex-a72) on an x86 host: figures are several times a Pi 4's; load {load0} -> {load1}")
if json_path:
    result = {
        "command": "edgekit run face_detection_short_range.tflite --source face.png --json",
        "runs": runs,
        "under_qemu": True,
        "qemu": qemu,
        "qemu_cpu": "cortex-a72",
        "host_cpu_flags": flags,
        "host_cpus": len(re.findall(r"^processor", cpuinfo, re.M)),
        "load_average_before": [float(x) for x in load0.split()],
        "load_average_after": [float(x) for x in load1.split()],
        "images": {tag: {"size_bytes": sizes[tag], "median": medians[tag], "runs": rows[tag]} for tag in rows},
        "ratio_before_over_after_median": ratios,
        "size_after_minus_before_bytes": sizes[after] - sizes[before],
    }
    tmp = Path(json_path + ".tmp")  # whole or not at all
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(json_path)
    print(f"saved {json_path}")
PYEOF
