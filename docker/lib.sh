# Shared by docker/test-images.sh, docker/test-arm64.sh and bench/gpu_check.sh (sourced, not run).
#
# What lives here: the working folder outside the checkout that every Python of these scripts starts
# in, the cache folder, the prerequisites check, cleanup of what the scripts start (a dockerd,
# mounts, user namespaces) also when interrupted, an arm64 Debian root file system made with
# debootstrap, and a way to run commands inside it under qemu-user-static with a binfmt_misc
# registration private to a user namespace (the host's binfmt_misc is never touched).

set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CALLER_DIR=$PWD                 # where the script was started: paths given to it are relative to it
SCRIPT=$(realpath -ms -- "$0")   # the script itself, for --help (its $0 may be relative)
CACHE=${EDGEKIT_DOCKER_CACHE:-$HOME/.cache/edgekit-docker}
[[ $CACHE == /* ]] || CACHE=$CALLER_DIR/$CACHE
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
NICE=(nice -n 10)
T0=$(date +%s)

log() { printf '[%4ss] %s\n' "$(($(date +%s) - T0))" "$*" >&2; }
usage() { sed -n '2,/^[^#]/{/^#/p}' "$SCRIPT"; }  # the script's opening comment, for --help
from_caller() { (cd "$CALLER_DIR" && realpath -ms -- "$1"); }  # a path given to the script, absolute (a venv's python stays a link)
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# -- cleanup: everything the scripts start is registered here and undone on exit or interrupt ----

CLEANUP=()
on_exit() {
    local i
    for ((i = ${#CLEANUP[@]} - 1; i >= 0; i--)); do eval "${CLEANUP[i]}" || true; done
}
trap on_exit EXIT
trap 'exit 130' INT TERM HUP

# -- Python never starts in the checkout ------------------------------------------------------
#
# Python puts its working folder first on sys.path for a script on stdin (`python -`), `python -c`
# and `python -m`. Started in this checkout, `import edgekit` then finds its edgekit/ folder, which
# is not the package: pyproject's package-dir maps runtime/, export/ and models/ into the installed
# one, so an installed edgekit fails there ("No module named 'edgekit.runtime'"). The checkout's own
# editable .venv hides this (its finder maps the rest in); the cache's venv-x86 of a fresh clone, or
# the GPU machine's wheel, does not. PYTHONSAFEPATH=1 stops it on Python 3.11 and newer only, and
# edgekit supports 3.10 (Ubuntu 22.04's python3): there it is silently ignored. So the scripts
# sourcing this run from an empty folder of their own, which works on every Python: the paths they
# use are absolute ($REPO, $CACHE), and a path given on their command line goes through from_caller.
WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/edgekit-workdir.XXXXXX")
CLEANUP+=("rmdir '$WORKDIR'")  # registered first, so undone last
cd "$WORKDIR"

# -- prerequisites -----------------------------------------------------------------------------

MISSING=()
need() {  # need CHECK-COMMAND SENTENCE: records SENTENCE when the check fails
    if ! eval "$1" >/dev/null 2>&1; then MISSING+=("$2"); fi
}

check_common() {
    need '[ "$(id -u)" = 0 ]' "not root: debootstrap, dockerd and the uid maps of the user namespace need root (run with sudo)"
    need 'command -v unshare && unshare --user --mount true' \
        "no user namespaces: 'unshare --user' fails (kernel.unprivileged_userns_clone or user.max_user_namespaces)"
    need 'command -v debootstrap' "no debootstrap: apt-get install debootstrap"
    need 'command -v qemu-aarch64-static' "no qemu: apt-get install qemu-user-static (only the static binary is used; no host binfmt registration)"
    need 'unshare --user --map-root-user --mount sh -c "mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc"' \
        "binfmt_misc cannot be mounted in a user namespace (needs Linux 6.7 or newer)"
    need 'python3 -c "import urllib.request as u; u.urlopen(\"$MIRROR/dists/bookworm/Release\", timeout=15)"' \
        "no package archive: $MIRROR/dists/bookworm/Release cannot be fetched (set DEBIAN_MIRROR)"
    need 'python3 -m pip --version' "no pip for the host's python3: apt-get install python3-pip"
    local index
    index=${PIP_INDEX_URL:-$(python3 -m pip config get global.index-url 2>/dev/null || echo https://pypi.org/simple)}
    need 'python3 -c "import urllib.request as u; u.urlopen(\"${index%/}/flatbuffers/\", timeout=15)"' \
        "no Python package index: ${index%/}/flatbuffers/ cannot be fetched (set PIP_INDEX_URL)"
}

report_missing() {  # prints what is missing; returns 1 if anything is
    if ((${#MISSING[@]})); then
        printf 'missing: %s\n' "${MISSING[@]}" >&2
        return 1
    fi
    echo "prerequisites: all present (cache: $CACHE)" >&2
}

# -- the host's own Python with edgekit[train], for the quickstart and the reference outputs -----

host_python() {  # the checkout's .venv when it has TensorFlow, else one made in the cache
    # edgekit.remote: an edgekit new enough for test-arm64.sh's `bench --on`
    if [ -x "$REPO/.venv/bin/python" ] && "$REPO/.venv/bin/python" -c "import tensorflow, edgekit.remote" 2>/dev/null; then
        echo "$REPO/.venv/bin/python"
        return
    fi
    local venv=$CACHE/venv-x86
    if ! [ -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import tensorflow, edgekit.remote" 2>/dev/null; then
        log "making $venv with edgekit[train] (TensorFlow: a few minutes)"
        python3 -m venv "$venv"
        "${NICE[@]}" "$venv/bin/pip" install -q "$REPO[train]" >&2
    fi
    echo "$venv/bin/python"
}

build_wheel() {  # the wheel of this checkout, into DIR; prints its path
    local out=$1 py
    py=$(host_python)
    rm -rf "$out" && mkdir -p "$out"
    "$py" -m pip wheel -q --no-deps "$REPO" -w "$out" >&2
    ls "$out"/edgekit-*.whl
}

quickstart_models() {  # the quickstart's files (trained once, then cached); prints the folder
    # 3 epochs, not the default 15: the files are for running and comparing, not for accuracy
    local out=$CACHE/quickstart py
    if ! [ -f "$out/model_int8.tflite" ] || ! [ -f "$out/model_int8.onnx" ]; then
        py=$(host_python)
        log "edgekit quickstart into $out (training the MNIST CNN for 3 epochs)"
        "${NICE[@]}" "$(dirname "$py")/edgekit" quickstart --out "$out" --epochs 3 --runs 50 --force >&2
    fi
    echo "$out"
}

make_inputs() {  # make_inputs DEST QUICKSTART: what the images are exercised on, read-only for all
    # the quickstart's models and the shipped BlazeFace, 8 shipped digits and a photo with a face
    local dest=$1 qs=$2 py
    py=$(host_python)
    rm -rf "$dest" && mkdir -p "$dest/models" "$dest/digits"
    cp "$qs"/model*.tflite "$qs"/model*.onnx "$REPO/runtime/assets/face_detection_short_range.tflite" "$dest/models/"
    "$py" - "$dest" <<'PYEOF'
import sys
from pathlib import Path

import cv2
import numpy as np

from edgekit.runtime.datasets import load_dataset

out = Path(sys.argv[1])
data = load_dataset("mnist", "shipped")
for i in range(8):
    cv2.imwrite(str(out / "digits" / f"digit_{i}_label_{int(data.heldout.y[i * 100])}.png"), data.heldout.x[i * 100])
try:  # a real photo with a face when scikit-image is installed, else a drawn one
    from skimage.data import astronaut

    img = np.ascontiguousarray(astronaut()[..., ::-1])
except ImportError:
    img = np.full((256, 256, 3), 90, np.uint8)
    cv2.ellipse(img, (128, 120), (60, 80), 0, 0, 360, (120, 160, 220), -1)
cv2.imwrite(str(out / "face.png"), img)
PYEOF
    chmod -R a+rX "$dest"
}

# -- the runtime tests, for a Python that has the installed wheel and no TensorFlow ---------------

TEST_EXTRAS=(pytest scikit-image onnx)  # the runtime tests' own needs; scikit-image: its photos

stage_tests() {  # stage_tests DEST: the tests as a folder with no edgekit package in it (the installed one is tested)
    local dest=$1
    rm -rf "$dest" && mkdir -p "$dest/runtime"
    cp -r "$REPO/tests" "$REPO/pyproject.toml" "$dest/"
    cp -r "$REPO/runtime/assets" "$dest/runtime/"  # files the tests open by path
}

# `pytest -m runtime_only` in the staged tests (run where they were staged: cd there first)
RUNTIME_TESTS='pytest -q -p no:cacheprovider -m runtime_only -o addopts= -rs --durations=15 tests'

digest() {  # digest PATH...: one short hash of the files' names and contents, for a cache key
    # a wheel is hashed by its members, not its bytes: a rebuild of the same sources differs only
    # in the zip's timestamps; a folder by its files (no __pycache__)
    python3 - "$@" <<'PYEOF'
import hashlib, os, sys, zipfile

h = hashlib.sha256()
for path in sys.argv[1:]:
    if os.path.isdir(path):
        members = []
        for folder, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", ".pytest_cache"))
            for f in sorted(files):
                full = os.path.join(folder, f)
                with open(full, "rb") as fh:
                    members.append((os.path.relpath(full, path), fh.read()))
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            members = [(n, z.read(n)) for n in sorted(z.namelist())]
    else:
        with open(path, "rb") as fh:
            members = [(os.path.basename(path), fh.read())]
    for name, data in members:
        h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
print(h.hexdigest()[:16])
PYEOF
}

# -- arm64 wheels, downloaded natively for the target Python -----------------------------------

aarch64_platforms() {  # pip does not widen a --platform tag: name every glibc a wheel may target
    local v
    echo --platform manylinux2014_aarch64
    for v in $(seq 17 36); do echo --platform "manylinux_2_${v}_aarch64"; done
}

download_aarch64_wheels() {  # download_aarch64_wheels PYVER DEST WHEEL EXTRA...: a wheelhouse for pip --no-index
    # done again only when the wheel's requirements or the extras change (pip download re-resolves
    # against the index every time: minutes)
    local pyver=$1 dest=$2 wheel=$3 key
    shift 2
    key=$( (python3 -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); print(z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode())' "$wheel" |
        grep '^Requires-Dist'; echo "$pyver ${*:2}") | sha256sum | cut -c1-16)
    if [ "$(cat "$dest/.edgekit-key" 2>/dev/null)" = "$key" ]; then
        cp "$wheel" "$dest/"
        return
    fi
    mkdir -p "$dest"
    local rc=0
    # shellcheck disable=SC2046
    "${NICE[@]}" python3 -m pip download -q --only-binary=:all: $(aarch64_platforms) \
        --python-version "$pyver" --implementation cp -d "$dest" "$@" >"$dest.log" 2>&1 || rc=$?
    grep -v 'is ignored' "$dest.log" >&2 || true
    # a wheel pip could not find is reported above, and the install then fails naming it
    if ((rc == 0)); then echo "$key" >"$dest/.edgekit-key"; fi
}

# -- an arm64 Debian root file system, and commands inside it -----------------------------------

# binfmt_misc entry for aarch64 ELF executables; F: qemu is opened now, so chroots need no copy of it
BINFMT=':qemu-aarch64:M::\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:'

in_userns() {  # in_userns CMD...: CMD as root of new user, mount and pid namespaces (uids 0-65535 mapped 1:1)
    # a single-uid map (--map-root-user) cannot chown to the system users Debian's files belong to;
    # a full map is written here by real root, since util-linux's --map-users needs newuidmap. The
    # pid namespace ends every process inside when its first one ends (--kill-child on interrupt).
    local fifo pid me rc=0
    fifo=$(mktemp -u "${TMPDIR:-/tmp}/edgekit-userns.XXXXXX")
    mkfifo "$fifo"
    unshare --user --mount --pid --fork --kill-child --mount-proc -- \
        bash -c 'read -r _ < "$0"; rm -f "$0"; exec "$@"' "$fifo" "$@" &
    pid=$!
    CLEANUP+=("kill $pid 2>/dev/null; rm -f '$fifo'")
    me=$(readlink /proc/self/ns/user)
    while [ -e "/proc/$pid" ] && [ "$(readlink "/proc/$pid/ns/user")" = "$me" ]; do sleep 0.02; done
    echo "0 0 65536" >"/proc/$pid/uid_map"
    echo "0 0 65536" >"/proc/$pid/gid_map"
    echo go >"$fifo"
    wait "$pid" || rc=$?
    unset 'CLEANUP[${#CLEANUP[@]}-1]'
    rm -f "$fifo"
    return $rc
}

# What a Raspberry Pi 4 reports: ai-edge-litert's CPU detection (cpuinfo) reads /proc/cpuinfo and,
# under qemu, would see the x86 host's; QEMU_CPU=cortex-a72 makes the emulated CPU match it.
PI_CPUINFO=$(for i in 0 1 2 3; do printf 'processor\t: %s\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n' $i; done
    printf 'Hardware\t: BCM2835\nRevision\t: c03114\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n')

# The script that runs inside the namespace: binfmt_misc, /proc /dev /sys and the Pi's cpuinfo,
# extra bind mounts (SRC:DEST[:ro]), then chroot. Everything is undone when the namespace ends.
CHROOT_SH='
set -e
root=$1; shift
mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
printf "%s%s:F" "$EDGEKIT_BINFMT" "$(command -v qemu-aarch64-static)" > /proc/sys/fs/binfmt_misc/register
if [ -x "$root/bin/sh" ] && [ -e "$root/etc/os-release" ]; then
  mount --rbind /proc "$root/proc"
  mount --rbind /dev "$root/dev"
  mount --rbind /sys "$root/sys"
  printf "%s\n" "$EDGEKIT_CPUINFO" > "$root/.cpuinfo"
  mount --bind "$root/.cpuinfo" "$root/proc/cpuinfo"
fi
while [ "$1" != "--" ]; do
  src=${1%%:*}; rest=${1#*:}; dest=${rest%%:*}; mkdir -p "$root$dest"
  mount --bind "$src" "$root$dest"; [ "${rest#*:}" = ro ] && mount -o remount,bind,ro "$root$dest"
  shift
done
shift
exec env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
  QEMU_CPU=cortex-a72 container=lxc \
  chroot ${EDGEKIT_USERSPEC:+--userspec=$EDGEKIT_USERSPEC} "$root" "$@"
'

arm64_chroot() {  # arm64_chroot ROOT [SRC:DEST[:ro]]... -- CMD...  (as EDGEKIT_USERSPEC=uid:gid if set)
    local root=$1
    shift
    EDGEKIT_BINFMT=$BINFMT EDGEKIT_CPUINFO=$PI_CPUINFO in_userns bash -c "$CHROOT_SH" chroot-sh "$root" "$@"
}

make_arm64_rootfs() {  # make_arm64_rootfs SUITE DIR PACKAGES: an arm64 Debian, once (a stamp marks it done)
    # debootstrap's first stage (native: downloads, unpacks the required packages), then the rest of
    # the packages unpacked natively too. Debootstrap's second stage would run dpkg and every
    # maintainer script under qemu: 20+ minutes per suite on a 2-core machine, for nothing the
    # runtime uses (users, alternatives and caches are set up below; ldconfig runs under qemu).
    local suite=$1 dir=$2 include=$3 deb
    if [ -f "$dir/.edgekit-ready" ] && [ "$(cat "$dir/.edgekit-ready")" = "$include" ]; then
        log "arm64 $suite root file system: cached ($dir)"
        return
    fi
    log "arm64 $suite root file system: debootstrap --foreign into $dir, then the packages unpacked"
    rm -rf "$dir"
    mkdir -p "$dir" "$CACHE/debs/$suite"
    "${NICE[@]}" debootstrap --foreign --arch=arm64 --variant=minbase --include="$include" \
        --cache-dir="$CACHE/debs/$suite" "$suite" "$dir" "$MIRROR" >"$dir.log" 2>&1 ||
        { tail -5 "$dir.log" >&2; die "debootstrap (first stage) of $suite failed: see $dir.log"; }
    # inside a container debootstrap makes /proc a symlink to the host's; the chroot mounts its own
    if [ -L "$dir/proc" ]; then rm "$dir/proc" && mkdir "$dir/proc"; fi
    for deb in "$dir"/var/cache/apt/archives/*.deb; do
        dpkg-deb --fsys-tarfile "$deb" | tar -C "$dir" --keep-directory-symlink -xf - ||
            die "cannot unpack $deb into $dir"
    done
    # what ca-certificates' own script would make: Debian's pip (trixie) reads this bundle
    if [ -d "$dir/usr/share/ca-certificates" ]; then
        mkdir -p "$dir/etc/ssl/certs"
        cat "$dir"/usr/share/ca-certificates/*/*.crt >"$dir/etc/ssl/certs/ca-certificates.crt"
    fi
    cp "$dir/usr/share/base-passwd/passwd.master" "$dir/etc/passwd"
    cp "$dir/usr/share/base-passwd/group.master" "$dir/etc/group"
    arm64_chroot "$dir" -- /sbin/ldconfig >>"$dir.log" 2>&1 || die "ldconfig under qemu failed in $dir: see $dir.log"
    # what an image or a test never reads: the .debs (kept in the cache), docs, man pages, locales
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir/debootstrap" "$dir"/var/lib/apt/lists/* \
        "$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/info/* "$dir"/usr/share/locale/* \
        "$dir/.cpuinfo"
    echo "$include" >"$dir/.edgekit-ready"
}
