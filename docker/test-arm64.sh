#!/usr/bin/env bash
# The runtime on arm64, with the Pi's own Pythons: Debian bookworm's 3.11 and trixie's 3.13.
#
#   docker/test-arm64.sh [--check] [--rerun] [--cache DIR] [--suite bookworm|trixie]...
#
# For each suite: an arm64 Debian root file system (debootstrap, run under qemu-user-static with a
# binfmt_misc registration private to a user namespace), the wheel built from this checkout installed
# with `pip install` from aarch64 wheels downloaded for that Python, then inside it
#   - `edgekit doctor`,
#   - the runtime test subset (`pytest -m runtime_only`: the tests that need no TensorFlow),
#   - `edgekit bench --runs 20` on the quickstart's int8 TFLite and ONNX files and the shipped BlazeFace,
#   - outputs compared with the x86 outputs of the same files (docker/parity.py), within each mode's bar,
#   - and, from this machine, one `edgekit bench --on x86 --on arm64-SUITE` that measures both: the
#     arm64 root is a host of the hosts file whose edgekit runs through the chroot.
# Downloads, root file systems and results are kept under the cache folder
# (default ~/.cache/edgekit-docker, or EDGEKIT_DOCKER_CACHE): a second run reuses them. The runtime
# tests' passing result is reused too while their inputs (the wheel's contents, the tests, the venv,
# the root file system, qemu) are unchanged, as a build system reuses a test result; --rerun runs
# them anyway. Doctor, bench and parity always run. Exits non-zero when any step fails.
# --check only checks the prerequisites. Needs root, user namespaces, debootstrap, qemu-user-static,
# the Debian archive and the Python package index.
source "$(dirname "$0")/lib.sh"

SUITES=()
CHECK=0
RERUN=0
while (($#)); do
    case $1 in
    --check) CHECK=1 ;;
    --rerun) RERUN=1 ;;
    --cache) CACHE=$(from_caller "$2"); shift ;;
    --suite) SUITES+=("$2"); shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
    esac
    shift
done
((${#SUITES[@]})) || SUITES=(bookworm trixie)

check_common
report_missing || exit 1
((CHECK)) && exit 0

mkdir -p "$CACHE/work" "$CACHE/results"
# what the runtime needs from Debian: Python and, for opencv-python (what `pip install edgekit`
# brings), libGL and GLib (renamed libglib2.0-0t64 in trixie, the 64-bit time_t transition)
packages() {
    local glib=libglib2.0-0
    [ "$1" = bookworm ] || glib=libglib2.0-0t64
    echo "python3,python3-venv,ca-certificates,libgl1,$glib"
}

log "x86: wheel of this checkout, quickstart models, reference outputs"
WHEEL=$(build_wheel "$CACHE/work/wheel")
QS=$(quickstart_models)
MODELS=("$QS/model_int8.tflite" "$QS/model_int8.onnx" "$QS/model.tflite" "$QS/model.onnx"
    "$REPO/runtime/assets/face_detection_short_range.tflite")
rm -rf "$CACHE/work/models" && mkdir -p "$CACHE/work/models" && cp "${MODELS[@]}" "$CACHE/work/models/"
PY=$(host_python)
(cd "$CACHE/work" && "${NICE[@]}" "$PY" "$REPO/docker/parity.py" save ref-x86.npz models/*) >&2
stage_tests "$CACHE/work/tests"
cp "$REPO/docker/parity.py" "$CACHE/work/"

run_suite() {
    local suite=$1 root=$CACHE/rootfs/$1-arm64 pyver venv=/opt/edgekit-venv out res
    out=$CACHE/results/arm64-$suite.txt
    res=$CACHE/results/arm64-$suite  # each step's exit status, and the tests' output and key
    mkdir -p "$res"
    rm -f "$res"/{doctor,bench,parity,on}.rc "$res/reused"
    make_arm64_rootfs "$suite" "$root" "$(packages "$suite")"
    pyver=$(arm64_chroot "$root" -- python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    log "arm64 $suite: Python $pyver; aarch64 wheels for it"
    download_aarch64_wheels "$pyver" "$CACHE/wheels/cp${pyver/./}-aarch64" "$WHEEL" "${TEST_EXTRAS[@]}"
    local mounts=("$CACHE/work:/work:ro" "$CACHE/wheels/cp${pyver/./}-aarch64:/wheels:ro") key
    # the venv is made again when the wheels it came from change; otherwise only edgekit's own wheel
    # is reinstalled (pip under qemu is slow: --no-compile spares it compiling every module)
    key=$(cd "$CACHE/wheels/cp${pyver/./}-aarch64" && ls | grep -v '^edgekit-' | sha256sum | cut -c1-16)
    if [ "$(cat "$root$venv/.edgekit-key" 2>/dev/null)" = "$key" ]; then
        log "arm64 $suite: pip install --force-reinstall --no-deps the wheel (under qemu; the venv's other packages are cached)"
        arm64_chroot "$root" "${mounts[@]}" -- $venv/bin/pip install -q --no-compile --no-index --no-deps \
            --force-reinstall "/work/wheel/$(basename "$WHEEL")" >&2 || die "pip install of the wheel failed on arm64 $suite"
    else
        log "arm64 $suite: pip install the wheel and the test tools into a new venv (under qemu)"
        arm64_chroot "$root" "${mounts[@]}" -- sh -c "rm -rf $venv && python3 -m venv $venv &&
            $venv/bin/pip install -q --no-compile --no-index --find-links /wheels \
            /work/wheel/$(basename "$WHEEL") ${TEST_EXTRAS[*]} && echo $key > $venv/.edgekit-key" >&2 ||
            die "pip install of the wheel failed on arm64 $suite"
    fi
    # the tests' result is reused when everything it depends on is what it was when they passed
    local tkey tests_sh steps='doctor, runtime tests, bench, parity'
    tkey=$( { digest "$WHEEL" "$CACHE/work/tests" "$REPO/docker/lib.sh"
        echo "$suite $key $(cat "$root/.edgekit-ready") $RUNTIME_TESTS"
        qemu-aarch64-static --version | head -1; } | sha256sum | cut -c1-16)
    if ((!RERUN)) && [ "$(cat "$res/tests.key" 2>/dev/null)" = "$tkey" ] && [ "$(cat "$res/pytest.rc" 2>/dev/null)" = 0 ]; then
        local when
        when=$(date -r "$res/tests.key" '+%Y-%m-%d %H:%M')
        log "arm64 $suite: runtime tests: their passing run of $when stands (same wheel, tests and venv; --rerun runs them)"
        tests_sh="echo '== pytest -m runtime_only: the passing run of $when, not run again (same wheel, tests and venv; --rerun runs them)'
tail -60 /out/pytest.txt"
        steps='doctor, bench, parity'
        touch "$res/reused"
    else
        rm -f "$res"/{tests.key,pytest.rc,pytest.txt,reused}
        tests_sh="echo '== pytest -m runtime_only'; export PATH=$venv/bin:\$PATH
cd /tmp && rm -rf edgekit-tests && cp -r /work/tests edgekit-tests && cd edgekit-tests
$RUNTIME_TESTS >/out/pytest.txt 2>&1; rc pytest; tail -60 /out/pytest.txt"
    fi
    log "arm64 $suite: $steps (under qemu)"
    local script
    # rc NAME: the exit status of the command before it, kept for the verdict
    script="rc() { echo \$? >/out/\$1.rc; }
cd /tmp
echo '== uname'; uname -m; grep -m1 Model /proc/cpuinfo
echo '== edgekit'; $venv/bin/python -c 'import edgekit, sys; print(edgekit.__file__, sys.version.split()[0])'
echo '== doctor'; $venv/bin/edgekit doctor; rc doctor
$tests_sh
echo '== bench'; $venv/bin/edgekit bench /work/models/model_int8.tflite /work/models/model_int8.onnx /work/models/face_detection_short_range.tflite --runs 20; rc bench
echo '== parity'; cd /work && $venv/bin/python /work/parity.py check /work/ref-x86.npz models/*; rc parity"
    arm64_chroot "$root" "${mounts[@]}" "$res:/out" -- sh -c "$script" >"$out" 2>&1 || true
    # one command measures x86 and arm64: this machine and the arm64 root as two hosts of `--on`. They
    # share one cache folder, so one lock: the suites' and the x86 benches run one after another.
    local w=$CACHE/remote pi=$CACHE/work/edgekit-arm64-$suite
    mkdir -p "$w"
    printf '#!/usr/bin/env bash\n# edgekit in the arm64 %s root, under qemu, the --on cache at the same path\nsource %q\narm64_chroot %q %q -- %q "$@"\n' \
        "$suite" "$REPO/docker/lib.sh" "$root" "$w:$w" "$venv/bin/edgekit" >"$pi"
    chmod +x "$pi"
    printf '[x86]\nlocal = true\nedgekit = "%s -m edgekit.cli"\nworkdir = "%s"\n\n[arm64-%s]\nlocal = true\nedgekit = "%s"\nworkdir = "%s"\n' \
        "$PY" "$w" "$suite" "$pi" "$w" >"$res/hosts.toml"
    log "arm64 $suite: edgekit bench --on x86 --on arm64-$suite (one command, both)"
    rm -rf "$res/on-results"
    { echo "== edgekit bench --on x86 --on arm64-$suite"
      (cd "$res" && "${NICE[@]}" "$PY" -m edgekit.cli bench "$CACHE/work/models/model_int8.tflite" \
          "$CACHE/work/models/model_int8.onnx" --runs 20 --on x86 --on "arm64-$suite" --hosts hosts.toml \
          --out on-results 2>&1); echo $? >"$res/on.rc"; } >>"$out"
    if [ -f "$res/tests.key" ]; then :  # reused: its date stays that of the run
    elif [ "$(cat "$res/pytest.rc" 2>/dev/null)" = 0 ]; then echo "$tkey" >"$res/tests.key"; fi
    log "arm64 $suite: done, results in $out"
}

# The suites run side by side: each one's pytest under qemu keeps about one core busy, so on two
# cores both take little longer than the slower alone (one after the other, 24 min warm; the goal
# is 20 cold). Each runs in a subshell with its own cleanup (its namespaces), which the main
# shell's cleanup ends on an interrupt.
declare -A JOBS=()
rm -f "$CACHE"/results/arm64-*.txt
for suite in "${SUITES[@]}"; do
    (
        CLEANUP=()  # its own: not the main shell's (which kills the suites started before it)
        trap on_exit EXIT
        trap 'exit 130' INT TERM HUP
        run_suite "$suite"
    ) &
    JOBS[$suite]=$!
    CLEANUP+=("kill ${JOBS[$suite]} 2>/dev/null")
done
FAILED=()
declare -A RAN=()
for suite in "${SUITES[@]}"; do
    if wait "${JOBS[$suite]}"; then RAN[$suite]=1; else FAILED+=("$suite: could not run (see the messages above)"); fi
done
for suite in "${SUITES[@]}"; do
    printf '\n===== arm64 %s =====\n' "$suite"
    cat "$CACHE/results/arm64-$suite.txt" 2>/dev/null || echo "(no results)"
done
log "all done"
for suite in "${SUITES[@]}"; do
    res=$CACHE/results/arm64-$suite
    [ "${RAN[$suite]:-}" ] || { printf '%-9s could not run\n' "$suite"; continue; }
    printf '%-9s %s%s | %s\n' "$suite" "$(grep -E '^[0-9]+ (passed|failed)|passed|failed' "$res/pytest.txt" 2>/dev/null | tail -1)" \
        "$([ -f "$res/reused" ] && date -r "$res/tests.key" '+ (the run of %Y-%m-%d %H:%M, reused)')" \
        "$(grep '^parity:' "$res.txt" 2>/dev/null || echo 'parity: no result')"
    bad=()
    for step in doctor pytest bench parity on; do
        [ "$(cat "$res/$step.rc" 2>/dev/null)" = 0 ] || bad+=("$step")
    done
    ((${#bad[@]} == 0)) || FAILED+=("$suite: ${bad[*]} failed")
done
((${#FAILED[@]} == 0)) || die "on arm64, $(printf '%s; ' "${FAILED[@]}")see $CACHE/results"
