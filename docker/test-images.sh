#!/usr/bin/env bash
# Build the images and run edgekit inside them.
#
#   docker/test-images.sh [--check] [--cache DIR] [--gpu] [--only cpu|pi|gpu]... [--tests] [--base-from-registry]
#
# CPU (docker/Dockerfile.cpu) and Pi (docker/Dockerfile.pi, arm64) are built and exercised:
# `edgekit doctor`, `edgekit info` and `edgekit run` on the quickstart's exported models and on the
# shipped BlazeFace, and in the CPU image also a short train -> export -> bench. The image sizes are
# printed at the end, and the Pi image's by layer. The Pi image cannot be started by this machine's
# Docker (x86, and no binfmt_misc registration on the host is made): its file system is exported and
# run under qemu-user-static in a user namespace, the same way as docker/test-arm64.sh. With --tests
# the runtime tests (`pytest -m runtime_only`) run there too, on the image's own packages: about 9
# minutes under qemu on two cores, which is why they are not run by default (docker/test-arm64.sh
# runs the same tests on the same aarch64 wheels, with Python 3.11 and 3.13).
# GPU (docker/Dockerfile.gpu): built and run with --gpu (its CUDA/cuDNN wheels are about 1.5 GB to
# download); without it the Dockerfile is only checked for syntax. Either way the script says which.
# --only builds and exercises just the images named (--only gpu implies --gpu).
#
# Bases: python:3.11-slim-bookworm when a registry answers (or --base-from-registry), otherwise local
# bases made with debootstrap and `docker import` (edgekit-base:bookworm-amd64, -arm64).
# A Docker daemon already running is used (DOCKER_HOST); otherwise one is started for the run, with
# its data under the cache folder (so a second run reuses layers), and stopped at the end.
# --check only checks the prerequisites.
source "$(dirname "$0")/lib.sh"

CHECK=0
GPU=0
PI_TESTS=0
ONLY=()
REGISTRY=auto
while (($#)); do
    case $1 in
    --check) CHECK=1 ;;
    --cache) CACHE=$(from_caller "$2"); shift ;;
    --gpu) GPU=1 ;;
    --only)
        case ${2:-} in cpu | pi | gpu) ONLY+=("$2") ;; *) die "--only takes cpu, pi or gpu, not '${2:-}'" ;; esac
        shift
        ;;
    --tests) PI_TESTS=1 ;;
    --base-from-registry) REGISTRY=yes ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
    esac
    shift
done
((${#ONLY[@]})) || ONLY=(cpu pi)
((GPU)) && ONLY+=(gpu)
wanted() { [[ " ${ONLY[*]} " == *" $1 "* ]]; }

check_common
need 'command -v docker' "no docker client: apt-get install docker.io"
need 'docker version --format "{{.Server.Version}}" || command -v dockerd' \
    "no Docker daemon running and no dockerd to start one: apt-get install docker.io"
report_missing || exit 1
((CHECK)) && exit 0

mkdir -p "$CACHE/work" "$CACHE/results"
SIZES=$CACHE/results/image-sizes.txt

# -- a Docker daemon --------------------------------------------------------------------------

start_dockerd() {
    local sock=$CACHE/docker.sock i
    export DOCKER_HOST=unix://$sock
    log "starting dockerd (data in $CACHE/docker, socket $sock)"
    mkdir -p "$CACHE/docker"
    # no bridge and no iptables: builds use the host's network, containers run with --network none
    dockerd --host "$DOCKER_HOST" --data-root "$CACHE/docker" --exec-root /run/edgekit-dockerd \
        --pidfile /run/edgekit-dockerd.pid --bridge=none --iptables=false >"$CACHE/dockerd.log" 2>&1 &
    local pid=$!
    # stopped at the end, and what it leaves mounted under its exec-root (the netns file) undone
    CLEANUP+=("kill $pid; wait $pid 2>/dev/null; awk '\$2 ~ \"^/run/edgekit-dockerd/\" {print \$2}' /proc/mounts | xargs -r umount -l")
    for ((i = 0; i < 120; i++)); do
        docker version >/dev/null 2>&1 && return
        kill -0 "$pid" 2>/dev/null || { tail -5 "$CACHE/dockerd.log" >&2; die "dockerd did not start: see $CACHE/dockerd.log"; }
        sleep 0.5
    done
    die "dockerd did not answer within 60 s: see $CACHE/dockerd.log"
}
docker version >/dev/null 2>&1 || start_dockerd

# -- base images ------------------------------------------------------------------------------

import_rootfs() {  # import_rootfs DIR TAG PLATFORM: a root file system as an image, once per content
    local dir=$1 tag=$2 platform=$3 stamp
    stamp=$(cat "$dir/.edgekit-ready")
    if [ "$(docker image inspect -f '{{index .Config.Labels "edgekit.rootfs"}}' "$tag" 2>/dev/null)" = "$stamp" ]; then
        return
    fi
    log "docker import $dir as $tag"
    tar -C "$dir" --exclude=./.edgekit-ready --exclude=./.cpuinfo -c . |
        docker import --platform "$platform" -c "LABEL edgekit.rootfs=$stamp" -c 'CMD ["/bin/bash"]' - "$tag" >/dev/null
}

if [ "$REGISTRY" = auto ]; then
    REGISTRY=no
    timeout 30 docker pull -q python:3.11-slim-bookworm >/dev/null 2>&1 && REGISTRY=yes
fi
if [ "$REGISTRY" = yes ]; then
    log "bases: python:3.11-slim-bookworm from the registry"
    BASE_AMD64=python:3.11-slim-bookworm
    BASE_ARM64=python:3.11-slim-bookworm
    docker pull -q --platform linux/arm64 "$BASE_ARM64" >/dev/null
else
    log "bases: no registry answers; local bases made with debootstrap"
    dir=$CACHE/rootfs/bookworm-amd64
    if ! [ -f "$dir/.edgekit-ready" ]; then
        log "amd64 bookworm root file system: debootstrap into $dir"
        rm -rf "$dir" && mkdir -p "$dir" "$CACHE/debs/bookworm-amd64"
        "${NICE[@]}" debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
            --cache-dir="$CACHE/debs/bookworm-amd64" bookworm "$dir" "$MIRROR" >"$dir.log" 2>&1 ||
            { tail -5 "$dir.log" >&2; die "debootstrap of the amd64 base failed: see $dir.log"; }
        rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/archives/*.deb "$dir"/usr/share/doc/* \
            "$dir"/usr/share/man/* "$dir"/usr/share/locale/*
        echo "python3,python3-venv,ca-certificates" >"$dir/.edgekit-ready"
    fi
    import_rootfs "$dir" edgekit-base:bookworm-amd64 linux/amd64
    if wanted pi; then  # the Pi's base: Python alone (the image's last stage only copies files into it)
        make_arm64_rootfs bookworm "$CACHE/rootfs/pi-base-arm64" python3
        import_rootfs "$CACHE/rootfs/pi-base-arm64" edgekit-base:bookworm-arm64 linux/arm64
    fi
    BASE_AMD64=edgekit-base:bookworm-amd64
    BASE_ARM64=edgekit-base:bookworm-arm64
fi

# -- inputs: the quickstart's models, digits and a picture ------------------------------------

QS=$(quickstart_models)
PY=$(host_python)
IN=$CACHE/work/inputs
make_inputs "$IN" "$QS"

# what runs inside each image, on /in (the inputs, read-only)
# show FILTER CMD...: CMD's output through FILTER (head -12, tail -3), or all of it when CMD fails,
# which then ends the script with CMD's status (a pipe into tail would hide it: sh has no pipefail)
EXERCISE='set -e
show() { f=$1; shift; if "$@" >/tmp/ek.out 2>&1; then $f /tmp/ek.out; else s=$?; cat /tmp/ek.out; echo "failed ($s): $*"; return $s; fi; }
echo "== doctor"; edgekit doctor
echo "== info"; show "head -12" edgekit info /in/models/model_int8.tflite
echo "== run int8 TFLite on digits"; show "tail -3" edgekit run /in/models/model_int8.tflite --source /in/digits --json
echo "== run int8 ONNX on digits"; show "tail -3" edgekit run /in/models/model_int8.onnx --source /in/digits --json
echo "== run BlazeFace (shipped)"; show "tail -2" edgekit run /in/models/face_detection_short_range.tflite --source /in/face.png --json
echo "== bench"; edgekit bench /in/models/model_int8.tflite /in/models/model_int8.onnx --runs 50'

BUILT=()  # the images this run built: the size list marks the others, left by an earlier run
build() {  # build NAME DOCKERFILE BUILD-ARGS...
    local name=$1 file=$2 t
    shift 2
    BUILT+=("edgekit:$name")
    log "docker build edgekit:$name ($file)"
    t=$(date +%s)
    # certificates added on this machine (/usr/local/share/ca-certificates: a TLS proxy in front of
    # PyPI) go to pip in the build stages; the images themselves do not keep them
    local ca
    ca=$(cat /usr/local/share/ca-certificates/*.crt 2>/dev/null || true)
    "${NICE[@]}" docker build --network host -f "$REPO/$file" "$@" ${ca:+--build-arg "PIP_EXTRA_CA=$ca"} \
        -t "edgekit:$name" "$REPO" >"$CACHE/results/build-$name.log" 2>&1 ||
        { tail -15 "$CACHE/results/build-$name.log" >&2; die "docker build of edgekit:$name failed: see $CACHE/results/build-$name.log"; }
    log "edgekit:$name built in $(($(date +%s) - t)) s"
}

# -- CPU ---------------------------------------------------------------------------------------

if wanted cpu; then
    build cpu docker/Dockerfile.cpu --build-arg BASE="$BASE_AMD64"
    log "edgekit:cpu: doctor, info, run, bench, and train -> export -> run"
    docker run --rm --network none -v "$IN:/in:ro" edgekit:cpu sh -c "$EXERCISE
echo '== train, export, run inside the image'
show 'tail -1' edgekit train mnist-cnn --epochs 1 --out /tmp/r
show 'tail -2' edgekit export /tmp/r/model.keras --to tflite --quantize int8
show 'tail -1' edgekit run /tmp/r/model_int8.tflite --source /in/digits --json" 2>&1 | tee "$CACHE/results/image-cpu.txt" ||
        die "edgekit:cpu: a command inside the image failed (its output is above and in $CACHE/results/image-cpu.txt)"
fi

# -- Pi (arm64) --------------------------------------------------------------------------------

if wanted pi; then
    build pi docker/Dockerfile.pi --build-arg BASE="$BASE_ARM64" --build-arg BUILD_BASE="$BASE_AMD64"
    log "edgekit:pi: its file system under qemu (arm64): doctor, info, run, bench$( ((PI_TESTS)) && echo ', runtime tests')"
    PI_ROOT=$CACHE/work/pi-image
    rm -rf "$PI_ROOT" && mkdir -p "$PI_ROOT"
    cid=$(docker create edgekit:pi)
    docker export "$cid" | tar -C "$PI_ROOT" -xf -
    docker rm "$cid" >/dev/null
    mapfile -t PI_ENV < <(docker image inspect -f '{{range .Config.Env}}{{println .}}{{end}}' edgekit:pi | grep .)
    PI_MOUNTS=("$IN:/in:ro")
    PI_TESTS_SH=
    if ((PI_TESTS)); then
        # the tests and their tools (pytest, scikit-image, onnx: aarch64 wheels, fetched natively)
        # are mounted, never put in the image; the image's own packages come first on the path
        stage_tests "$CACHE/work/pi-tests"
        TOOLS=$CACHE/wheels/pi-test-tools
        if ! [ -f "$TOOLS/.edgekit-ready" ]; then
            rm -rf "$TOOLS"
            # shellcheck disable=SC2046
            "${NICE[@]}" python3 -m pip install -q --no-compile --target "$TOOLS" --only-binary=:all: \
                $(aarch64_platforms) --python-version 3.11 --implementation cp "${TEST_EXTRAS[@]}" >&2 ||
                die "pip could not fetch the aarch64 test tools (${TEST_EXTRAS[*]})"
            touch "$TOOLS/.edgekit-ready"
        fi
        chmod -R a+rX "$CACHE/work/pi-tests" "$TOOLS"
        PI_MOUNTS+=("$CACHE/work/pi-tests:/tests-src:ro" "$TOOLS:/test-tools:ro")
        PI_TESTS_SH="
echo '== pytest -m runtime_only (on the packages in the image; pytest mounted beside them)'
cp -r /tests-src /tmp/edgekit-tests && cd /tmp/edgekit-tests && export PYTHONPATH=\$PYTHONPATH:/test-tools &&
pytest() { python3 -m pytest \"\$@\"; } && show 'tail -60' $RUNTIME_TESTS"
    fi
    EDGEKIT_USERSPEC=1000:1000 arm64_chroot "$PI_ROOT" "${PI_MOUNTS[@]}" -- env "${PI_ENV[@]}" HOME=/tmp \
        sh -c "cd /tmp && uname -m && $EXERCISE$PI_TESTS_SH" 2>&1 | tee "$CACHE/results/image-pi.txt" ||
        die "edgekit:pi: a command in its file system failed (its output is above and in $CACHE/results/image-pi.txt)"
    docker history --format '{{.Size}}\t{{.CreatedBy}}' edgekit:pi | cut -c1-150 | tee "$CACHE/results/image-pi-layers.txt"
fi

# -- GPU ---------------------------------------------------------------------------------------

if wanted gpu; then
    build gpu docker/Dockerfile.gpu --build-arg BASE="$BASE_AMD64"
    docker run --rm --network none edgekit:gpu edgekit doctor 2>&1 | tee "$CACHE/results/image-gpu.txt"
    GPU_NOTE="built; doctor ran without a GPU (see $CACHE/results/image-gpu.txt)"
else
    "$PY" - "$REPO/docker/Dockerfile.gpu" <<'PYEOF'
import re, subprocess, sys

# the instructions a Dockerfile may use, each RUN body through `sh -n`, and every stage's FROM resolvable
text = open(sys.argv[1]).read().replace("\\\n", " ")
known = {"FROM", "ARG", "RUN", "COPY", "ENV", "WORKDIR", "USER", "CMD", "ENTRYPOINT", "LABEL", "EXPOSE"}
args = set()
for n, line in enumerate(l.strip() for l in text.splitlines()):
    if not line or line.startswith("#"):
        continue
    word, _, rest = line.partition(" ")
    if word.upper() not in known:
        sys.exit(f"Dockerfile.gpu: unknown instruction {word!r}")
    if word == "ARG":
        args.add(rest.split("=")[0])
    if word == "FROM" and re.search(r"\$\{?(\w+)", rest) and re.search(r"\$\{?(\w+)", rest).group(1) not in args:
        sys.exit(f"Dockerfile.gpu: FROM uses an undeclared ARG: {rest}")
    if word == "RUN" and subprocess.run(["sh", "-n", "-c", rest]).returncode:
        sys.exit(f"Dockerfile.gpu: RUN is not valid sh: {rest}")
print("Dockerfile.gpu: syntax checked (instructions, ARGs, RUN bodies with sh -n)")
PYEOF
    GPU_NOTE="not built (needs --gpu: about 1.5 GB of CUDA wheels); syntax checked only"
fi

# -- sizes -------------------------------------------------------------------------------------

{
    for image in $(docker image ls --format '{{.Repository}}:{{.Tag}}' | grep -E '^edgekit(-base)?:' | sort); do
        stale=
        [[ $image == edgekit:* && " ${BUILT[*]} " != *" $image "* ]] && stale=' (not built in this run)'
        size=$(docker image inspect -f '{{.Size}}' "$image")
        printf '%s %s bytes (%s MB)%s\n' "$image" "$size" "$((size / 1000000))" "$stale"
    done
    echo "edgekit:gpu: $GPU_NOTE"
} | tee "$SIZES"
log "all done"
