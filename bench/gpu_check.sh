#!/usr/bin/env bash
# One-shot GPU check (issue 13) for a session that is lent a GPU machine: onnxruntime-gpu installed
# from carried parts (no network there), then `edgekit doctor`, `edgekit bench` on MobileNetV2 224
# fp32 (a file with no card) at batch 1 and 32 on CUDA and CPU, and plain `session.run` against
# edgekit's IO binding and IO binding + CUDA graph (bench/gpu_modes.py), all into $OUT, each step
# under its own time limit: at most 465 s in all (one device call of at most 10 minutes); on an H100
# it should take 4-5 minutes, most of it child processes starting ONNX Runtime and CUDA.
#
# 1. Here, with the network and TensorFlow (a few minutes; the parts are about 256 MB):
#        bash bench/gpu_check.sh --prepare
#    makes .gpu-model/ (mobilenetv2.onnx from bench/make_tensor_models.py, edgekit's wheel, the
#    small wheels it needs that the GPU machine may lack, the onnxruntime-gpu wheel's name) and the
#    five wheel parts .gpu1 ... .gpu5 (../shared/tools/gpu-wheel-parts.sh), all ignored by git
#    (/.gpu*/ in .gitignore: a carried folder must be ignored, or it travels with every call), and
#    prints the six device calls to make back to back (the machine keeps /tmp while warm):
#        carry [".gpu-model"]: mkdir -p /tmp/gpu && cp -r .gpu-model/. /tmp/gpu/
#        carry [".gpu1"]: cp .gpu1/part00 /tmp/gpu/     ... and so on to .gpu4/part03
#        carry [".gpu5"], timeout_s 560: cp .gpu5/part04 /tmp/gpu/ && bash bench/gpu_check.sh
#    edgekit travels as the wheel built here: prepare again after changing its code.
# 2. The last call runs this script with no option: the figures come back under $OUT
#    (gpu_check.log, summary.txt, bench-b1.json, bench-b32.json, modes-b1.json, modes-b32.json, and
#    extras.tgz with doctor.txt, nvidia-smi.txt, steps.tsv, the tables, the TensorRT row and the
#    `pytest -m gpu` report: a call brings back 8 files at most). Save the bench JSONs under
#    bench/results/ and run `edgekit compare` on them with a result from this machine.
#
# `bash bench/gpu_check.sh --tests` in the last call runs only the install and `pytest -m gpu`;
# `bash bench/gpu_check.sh --image` in the last call instead runs the GPU image's own commands
# (docker/Dockerfile.gpu: `edgekit doctor`, then `edgekit info` and `edgekit bench --device
# cuda,cpu` on the quickstart's ONNX files, which --prepare puts in .gpu-model/quickstart/), into
# $OUT/bench-quickstart.json.
#
# A dry run of the same steps on this machine's CPU, with this checkout's venv (no parts needed;
# MODEL= a batch-1 MobileNetV2 ONNX file if .gpu-model/ has none):
#        OUT=/tmp/x bash bench/gpu_check.sh --cpu
set -uo pipefail

mode=gpu
case "${1:-}" in
  --prepare) mode=prepare ;;
  --cpu) mode=cpu ;;
  --image) mode=image ;;
  --tests) mode=tests ;;
  "") ;;
  *) echo "usage: bash bench/gpu_check.sh [--prepare | --cpu | --image | --tests]" >&2; exit 2 ;;
esac
# docker/lib.sh: every Python here starts in an empty folder outside the checkout (its edgekit/ is
# not the package the wheel installs), so paths into the checkout are "$REPO/...", and a path given
# in OUT, MODEL, PY or GPU_PARTS_TOOL is taken from where the script was started (from_caller).
# The library's `set -e` is undone: a failed step is recorded and the script goes on.
source "$(dirname "$0")/../docker/lib.sh"
set +e
export REPO
PYVER=${PYVER:-3.12}  # the GPU machine's Python (DESIGN.md: cp312)
# the CLI through $PY (set below for each mode), without a console script on the path
ek() { "$PY" -c 'import sys; from edgekit.cli import main; sys.argv[0] = "edgekit"; sys.exit(main())' "$@"; }
gpu_tests() {  # `pytest -m gpu` into $OUT/tests.txt, extra pytest arguments after
  "$PY" -m pytest -q -p no:cacheprovider -m gpu "$REPO/tests/test_gpu.py" "$@" > "$OUT/tests.txt" 2>&1
}
export -f ek gpu_tests

if [ "$mode" = prepare ]; then
  set -e
  py=${PY:-$REPO/.venv/bin/python}
  [[ $py != */* ]] || py=$(from_caller "$py")
  g=$REPO/.gpu-model  # it and .gpu1/ ... .gpu5/ go into the checkout, ignored by git
  git -C "$REPO" check-ignore -q .gpu-model/x || { echo "/.gpu*/ is not ignored here: add it to .gitignore first" >&2; exit 1; }
  mkdir -p "$g/wheels"
  if [ ! -f "$g/mobilenetv2.onnx" ]; then
    made=$(mktemp -d /tmp/gpu-check-models.XXXX)
    "$py" "$REPO/bench/make_tensor_models.py" "$made"
    cp "$made/mobilenetv2.onnx" "$g/"
  fi
  if [ ! -f "$g/quickstart/model.onnx" ]; then  # the quickstart's ONNX files, for --image
    made=$(mktemp -d /tmp/gpu-check-quickstart.XXXX)
    PY=$py ek quickstart --out "$made" > /dev/null
    mkdir -p "$g/quickstart"
    cp "$made"/model*.onnx "$g/quickstart/"
  fi
  rm -f "$g"/wheels/*.whl
  "$py" -m pip wheel -q --no-deps -w "$g/wheels" "$REPO"
  "$py" -m pip download -q --only-binary=:all: --python-version "$PYVER" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform any \
    -d "$g/wheels" typer flatbuffers
  # the shared tool wants a checkout whose .git is a folder (a worktree's is a file): run it in a
  # scratch folder that has one and bring its parts back
  if [ -n "${GPU_PARTS_TOOL:-}" ]; then tool=$(from_caller "$GPU_PARTS_TOOL"); else tool=$REPO/../shared/tools/gpu-wheel-parts.sh; fi
  scratch=$(mktemp -d /tmp/gpu-parts.XXXX)
  mkdir "$scratch/.git"
  (cd "$scratch" && bash "$tool" 2>&1) | tee "$g/parts.txt"
  for i in 1 2 3 4 5; do rm -rf "$REPO/.gpu$i"; mv "$scratch/.gpu$i" "$REPO/"; done
  rm -rf "$scratch"
  grep -o 'onnxruntime_gpu-[^ ]*\.whl' "$g/parts.txt" | head -1 > "$g/wheel-name"
  [ -s "$g/wheel-name" ] || { echo "no wheel name in the tool's output" >&2; exit 1; }
  du -sh "$g" "$REPO"/.gpu[1-5]
  cat <<'MSG'
Ready. Make these device calls back to back:
  carry [".gpu-model"]: mkdir -p /tmp/gpu && cp -r .gpu-model/. /tmp/gpu/
  carry [".gpu1"]: cp .gpu1/part00 /tmp/gpu/
  carry [".gpu2"]: cp .gpu2/part01 /tmp/gpu/
  carry [".gpu3"]: cp .gpu3/part02 /tmp/gpu/
  carry [".gpu4"]: cp .gpu4/part03 /tmp/gpu/
  carry [".gpu5"], timeout_s 560: cp .gpu5/part04 /tmp/gpu/ && bash bench/gpu_check.sh
MSG
  exit 0
fi

if [ -n "${OUT:-}" ]; then OUT=$(from_caller "$OUT"); else OUT=$(mktemp -d /tmp/gpu-check-out.XXXX); fi
mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu_check.log") 2>&1
start=$SECONDS
printf 'step\trc\tseconds\n' > "$OUT/steps.tsv"

# step NAME SECONDS COMMAND...: run it under its own limit (timeout ends its child processes too),
# record how it ended; the script goes on (no set -e) unless the caller stops on the code
step() {
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  echo "== $name (limit ${limit}s, ${SECONDS}s in)"
  timeout -k 5 "$limit" "$@"
  local rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - t0))" >> "$OUT/steps.tsv"
  [ "$rc" = 0 ] || echo "!! $name ended with code $rc"
  return "$rc"
}

if [ "$mode" != cpu ]; then
  PY=${PY:-python3}
  [[ $PY != */* ]] || PY=$(from_caller "$PY")
  devices=cuda,cpu
  big=32
  max_time=5
  runs1=2000
  runs32=300
  warmup=50
  models=/tmp/gpu/models
  src=/tmp/gpu/mobilenetv2.onnx
  install() {
    set -e
    local whl
    whl=$(cat /tmp/gpu/wheel-name)
    [ -f "/tmp/gpu/$whl" ] || cat /tmp/gpu/part0? > "/tmp/gpu/$whl"
    "$PY" -m pip install -q --upgrade --no-index --no-deps --target /tmp/site "/tmp/gpu/$whl"
    # edgekit and what it imports that this machine may lack (typer, flatbuffers), from carried wheels
    "$PY" -m pip install -q --upgrade --no-index --no-deps --target /tmp/site-edgekit /tmp/gpu/wheels/edgekit-*.whl
    PYTHONPATH=/tmp/site "$PY" -c 'import typer, flatbuffers' 2>/dev/null \
      || "$PY" -m pip install -q --upgrade --no-index --find-links /tmp/gpu/wheels --target /tmp/site-extra typer flatbuffers
  }
  # without onnxruntime-gpu nothing here is worth the device time (the CPU build would run instead)
  step install 80 bash -c "$(declare -f install); PY=$PY; install" || { cat "$OUT/steps.tsv"; exit 1; }
  export PYTHONPATH=/tmp/site:/tmp/site-edgekit:/tmp/site-extra
  step nvidia-smi 15 bash -c "nvidia-smi > '$OUT/nvidia-smi.txt'"
  step providers 30 "$PY" -c 'import onnxruntime as o; o.preload_dlls(); print(o.__version__, o.__file__, o.get_available_providers())'
else
  PY=${PY:-$REPO/.venv/bin/python}
  [[ $PY != */* ]] || PY=$(from_caller "$PY")
  devices=cpu
  big=4  # a dry run: MobileNetV2 at batch 32 takes seconds a call on two cores
  max_time=2
  runs1=30
  runs32=10
  warmup=3
  models=${OUT}/models
  src=$(from_caller "${MODEL:-$REPO/.gpu-model/mobilenetv2.onnx}")
fi


export PY OUT

if [ "$mode" = tests ]; then  # `pytest -m gpu` alone, after the install
  step tests 120 bash -c gpu_tests  # a function: `timeout` runs commands, so through bash
  cat "$OUT/tests.txt" "$OUT/steps.tsv"
  exit 0
fi

if [ "$mode" = image ]; then
  # The GPU image's own commands (docker/Dockerfile.gpu, docker/README.md) where Docker is not:
  # `edgekit doctor`, then `edgekit info` and `edgekit bench` on the quickstart's ONNX files (cards,
  # so the held-out accuracy is measured too) on CUDA and the CPU. The install differs from the
  # image's: no network there, so the machine's own numpy, OpenCV and nvidia-*-cu13 libraries serve
  # where the image installs them from PyPI.
  qs=/tmp/gpu/quickstart
  step doctor 30 bash -c "ek doctor > '$OUT/doctor.txt' 2>&1"
  step info 30 bash -c "ek info '$qs/model_int8.onnx' > '$OUT/info.txt' 2>&1"
  step bench-quickstart 240 bash -c "ek bench '$qs'/model*.onnx --device cuda,cpu --max-time 3 \
    --out '$OUT/bench-quickstart.json' > '$OUT/bench-quickstart.txt' 2>&1"
  cat "$OUT/doctor.txt" "$OUT/info.txt" "$OUT/bench-quickstart.txt" "$OUT/steps.tsv"
  exit 0
fi

step variants 30 "$PY" "$REPO/bench/gpu_modes.py" variants "$src" "$models" --batch "$big"
m1=$src
mb=$models/mobilenetv2_b$big.onnx
md=$models/mobilenetv2_dyn.onnx
step doctor 30 bash -c "ek doctor > '$OUT/doctor.txt'"
step bench-b1 90 bash -c "ek bench '$m1' '$md' --device $devices --batch 1 --max-time $max_time \
  --out '$OUT/bench-b1.json' --csv '$OUT/bench-b1.csv' > '$OUT/bench-b1.txt'"
step modes-b1 40 "$PY" "$REPO/bench/gpu_modes.py" time "$m1" "$md" --batch 1 --device "${devices%%,*}" \
  --runs "$runs1" --warmup "$warmup" --out "$OUT/modes-b1.json"
step bench-b$big 90 bash -c "ek bench '$mb' '$md' --device $devices --batch $big --max-time $max_time \
  --out '$OUT/bench-b$big.json' --csv '$OUT/bench-b$big.csv' > '$OUT/bench-b$big.txt'"
step modes-b$big 45 "$PY" "$REPO/bench/gpu_modes.py" time "$mb" "$md" --batch "$big" --device "${devices%%,*}" \
  --runs "$runs32" --warmup "$warmup" --out "$OUT/modes-b$big.json"
if [ "$mode" = gpu ]; then
  # TensorRT runs, or the row says plainly that its provider did not load and what ran instead
  step tensorrt 60 bash -c "ek bench '$m1' --device tensorrt --batch 1 --max-time 2 --no-save \
    > '$OUT/tensorrt.txt' 2>&1"
  step tests 120 bash -c 'gpu_tests --junitxml "$OUT/tests.xml"'
  tail -3 "$OUT/tests.txt"
fi
step summary 15 bash -c "'$PY' '$REPO/bench/gpu_modes.py' summary '$OUT' > '$OUT/summary.txt'"
cat "$OUT/summary.txt" 2>/dev/null
echo "== done in $((SECONDS - start)) s; steps:"
cat "$OUT/steps.tsv"
# at most 8 files come back from a device call: the JSONs, the log and the summary as they are, the
# rest in one archive
(cd "$OUT" && ls | grep -Ev '^(bench-b[0-9]+\.json|modes-b[0-9]+\.json|gpu_check\.log|summary\.txt|extras\.tgz|models)$' \
  | tar -czf extras.tgz -T - --remove-files)
