#!/usr/bin/env bash
# One-shot GPU check (issues 13 and 32) for a session that is lent a GPU machine, in one device call
# of at most 10 minutes (the steps' limits add up to 570 s; about 6-7 minutes expected on an H100,
# much of it child processes starting ONNX Runtime and CUDA): onnxruntime-gpu and edgekit installed
# from carried files (no network there), `edgekit doctor` (CUDA and TensorRT), then on MobileNetV2
# 224 and YOLOv8n at 320 and 640, each as a fixed-shape file and a dynamic-batch one, in fp32, fp16
# and int8, at batch 1 and 32:
#   - plain `session.run` against edgekit's IO binding and IO binding + CUDA graph, the six
#     interleaved in one process per model and precision (bench/gpu_modes.py time);
#   - `edgekit bench --device cuda --profile` on the dynamic-batch files (what edgekit exports) and
#     the fixed batch-1 fp32 ones, so the verdict says why int8 is or is not faster than fp32 there;
#   - a TensorRT row (it runs, or says which library keeps it out), `pytest -m gpu`, and
#     `edgekit compare` of the bench against this machine's CPU on the same files.
# The machine has no TensorFlow and no network: every model is made here and carried.
#
# 1. Here, with the network and TensorFlow:
#        YOLO_PY=path/to/python bash bench/gpu_check.sh --prepare
#    YOLO_PY is a Python with `ultralytics` (and torch) for the YOLOv8n exports (random weights from
#    Ultralytics' yaml, no download): e.g. `python3 -m venv V && V/bin/pip install ultralytics`.
#    It makes .gpu-build/ (ignored): MobileNetV2 (bench/make_tensor_models.py) and YOLOv8n at 320
#    and 640 with a fixed shape and once with dynamic=True, each in fp32, fp16 and int8
#    (bench/gpu_modes.py precisions: edgekit's own ONNX exporter functions); this machine's CPU
#    bench of the batch-1 dynamic-batch files (bench/results/gpu-matrix-vm.json); edgekit's wheel,
#    the small wheels the GPU machine may lack and the onnxruntime-gpu wheel. All of it goes into
#    one tar, cut into chunks that fit a call beside the checkout (64 MiB in all, the checkout
#    included), in folders .gpu1 ... .gpuN (ignored: /.gpu*/ in .gitignore; a carried folder must be,
#    or it travels with every call). It prints the device calls to make back to back (the machine
#    keeps /tmp while warm); edgekit travels as the wheel built here: prepare again after changing it.
# 2. The last call runs this script with no option: the figures come back under $OUT
#    (gpu_check.log, summary.txt, bench-b1.json, bench-b32.json, modes-b1.json, modes-b32.json, and
#    extras.tgz with doctor.txt, nvidia-smi.txt, steps.tsv, the tables, compare.md, the TensorRT
#    row and the `pytest -m gpu` report: a call brings back 8 files at most). Save the JSONs under
#    bench/results/ (gpu-MACHINE-*.json).
#
# `bash bench/gpu_check.sh --tests` in the last call runs only the install and `pytest -m gpu`;
# `bash bench/gpu_check.sh --image` runs the GPU image's own commands (docker/Dockerfile.gpu) on the
# quickstart's ONNX files, which --prepare puts in the tar too, into $OUT/bench-quickstart.json.
#
# A dry run of the same steps on this machine's CPU, with this checkout's venv, on the models
# --prepare made (or MODELS_SRC=a folder of NAME.onnx, NAME_fp16.onnx, NAME_int8.onnx files):
#        OUT=DIR bash bench/gpu_check.sh --cpu
# --prepare with NO_YOLO=1 leaves YOLOv8n out (a dry run of the preparation; not for the GPU).
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
# in OUT, MODELS_SRC, PY or YOLO_PY is taken from where the script was started (from_caller).
# The library's `set -e` is undone: a failed step is recorded and the script goes on.
source "$(dirname "$0")/../docker/lib.sh"
set +e
export REPO
PYVER=${PYVER:-3.12}  # the GPU machine's Python (DESIGN.md: cp312)
ORT_GPU=${ORT_GPU:-1.31.1}
BIG=32
# the CLI through $PY (set below for each mode), without a console script on the path
ek() { "$PY" -c 'import sys; from edgekit.cli import main; sys.argv[0] = "edgekit"; sys.exit(main())' "$@"; }
gpu_tests() {  # `pytest -m gpu` into $OUT/tests.txt, extra pytest arguments after
  "$PY" -m pytest -q -p no:cacheprovider -m gpu "$REPO/tests/test_gpu.py" "$@" > "$OUT/tests.txt" 2>&1
}
export -f ek gpu_tests

if [ "$mode" = prepare ]; then
  set -e
  PY=${PY:-$REPO/.venv/bin/python}
  [[ $PY != */* ]] || PY=$(from_caller "$PY")
  [ -z "${YOLO_PY:-}" ] || [[ $YOLO_PY != */* ]] || YOLO_PY=$(from_caller "$YOLO_PY")
  git -C "$REPO" check-ignore -q .gpu-build/x || { echo "/.gpu*/ is not ignored here: add it to .gitignore first" >&2; exit 1; }
  build=$REPO/.gpu-build
  src=$build/models-src
  mkdir -p "$src" "$build/wheels"
  if [ ! -f "$src/mobilenetv2.onnx" ]; then
    made=$(mktemp -d)
    "$PY" "$REPO/bench/make_tensor_models.py" "$made"
    cp "$made/mobilenetv2.onnx" "$src/"
    rm -rf "$made"
  fi
  [ -f "$src/mobilenetv2_int8.onnx" ] || "$PY" "$REPO/bench/gpu_modes.py" precisions "$src/mobilenetv2.onnx" --calib-shape 1x224x224x3
  if [ -z "${NO_YOLO:-}" ] && [ ! -f "$src/yolov8n-dyn.onnx" ]; then
    [ -n "${YOLO_PY:-}" ] || { echo "set YOLO_PY to a Python with ultralytics (see the top of this script), or NO_YOLO=1" >&2; exit 1; }
    # one model, three exports: the same random weights in each (Conv+BN fused once, by the first)
    (cd "$src" && YOLO_OFFLINE=1 "$YOLO_PY" - <<'PY'
import shutil
from pathlib import Path

import torch
from ultralytics import YOLO

torch.manual_seed(0)
model = YOLO("yolov8n.yaml")  # random weights: no download
for name, args in (("yolov8n-320", {"imgsz": 320}), ("yolov8n-640", {"imgsz": 640}),
                   ("yolov8n-dyn", {"imgsz": 640, "dynamic": True})):
    out = Path(model.export(format="onnx", simplify=False, **args))
    shutil.move(str(out), f"{name}.onnx")
PY
    )
  fi
  for m in yolov8n-320:320 yolov8n-640:640 yolov8n-dyn:320; do
    f=$src/${m%%:*}.onnx s=${m##*:}
    [ ! -f "$f" ] || [ -f "${f%.onnx}_int8.onnx" ] || "$PY" "$REPO/bench/gpu_modes.py" precisions "$f" --calib-shape "1x3x${s}x${s}"
  done
  # this machine's CPU on the same dynamic-batch files, at batch 1: what the GPU run is compared with
  if [ ! -f "$REPO/bench/results/gpu-matrix-vm.json" ]; then
    "$PY" "$REPO/bench/gpu_modes.py" variants "$src" "$build/models" --batch "$BIG" > /dev/null
    ek bench "$build"/models/*_dyn*.onnx --device cpu --batch 1 --max-time 2 --out "$REPO/bench/results/gpu-matrix-vm.json"
  fi
  cp "$REPO/bench/results/gpu-matrix-vm.json" "$build/here-vm.json"
  if [ ! -f "$build/quickstart/model.onnx" ]; then  # the quickstart's ONNX files, for --image
    made=$(mktemp -d)
    ek quickstart --out "$made" > /dev/null
    mkdir -p "$build/quickstart"
    cp "$made"/model*.onnx "$build/quickstart/"
    rm -rf "$made"
  fi
  rm -f "$build"/wheels/*.whl
  "$PY" -m pip wheel -q --no-deps -w "$build/wheels" "$REPO"
  wheel_flags=(--only-binary=:all: --python-version "$PYVER" --implementation cp
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform any -d "$build/wheels")
  "$PY" -m pip download -q "${wheel_flags[@]}" typer flatbuffers
  "$PY" -m pip download -q --no-deps "${wheel_flags[@]}" "onnxruntime-gpu==$ORT_GPU"
  (cd "$build/wheels" && ls onnxruntime_gpu-*.whl) | head -1 > "$build/wheel-name"
  # everything in one tar, cut to fit each call beside the checkout (what git tracks or does not
  # ignore travels with every call), with 2 MiB to spare for results saved before the calls
  tar -cf "$build/payload.tar" -C "$build" models-src wheels quickstart here-vm.json wheel-name
  checkout=$(cd "$REPO" && git ls-files -co --exclude-standard -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
  chunk=$(( 64 * 1048576 - checkout - 2 * 1048576 ))
  rm -rf "$REPO"/.gpu[0-9]*
  (cd "$build" && rm -f chunk* && split -b "$chunk" -d -a 2 payload.tar chunk)
  n=0
  for part in "$build"/chunk*; do
    n=$((n + 1)); mkdir -p "$REPO/.gpu$n"; mv "$part" "$REPO/.gpu$n/"
  done
  echo "payload $(du -h "$build/payload.tar" | cut -f1) in $n chunks of at most $((chunk / 1048576)) MiB (checkout $((checkout / 1048576)) MiB)"
  echo "Ready. Make these device calls back to back (timeout_s 580 for the last):"
  for i in $(seq 1 "$n"); do
    name=$(ls "$REPO/.gpu$i")
    cmd="mkdir -p /tmp/gpu && cp .gpu$i/$name /tmp/gpu/"
    [ "$i" = "$n" ] && cmd="$cmd && bash bench/gpu_check.sh"
    echo "  carry [\".gpu$i\"]: $cmd"
  done
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
  limit=$((limit * ${SCALE:-1}))  # a dry run on a small CPU: each limit times SCALE
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
  device=cuda
  max_time=1
  budget1=2
  budget32=3
  min_runs=20
  work=/tmp/gpu
  install() {
    set -e
    cat "$work"/chunk?? | tar -x -C "$work"
    local whl
    whl=$(cat "$work/wheel-name")
    "$PY" -m pip install -q --upgrade --no-index --no-deps --target /tmp/site "$work/wheels/$whl"
    # edgekit and what it imports that this machine may lack (typer, flatbuffers), from carried wheels
    "$PY" -m pip install -q --upgrade --no-index --no-deps --target /tmp/site-edgekit "$work"/wheels/edgekit-*.whl
    PYTHONPATH=/tmp/site "$PY" -c 'import typer, flatbuffers' 2>/dev/null \
      || "$PY" -m pip install -q --upgrade --no-index --find-links "$work/wheels" --target /tmp/site-extra typer flatbuffers
  }
  # without onnxruntime-gpu nothing here is worth the device time (the CPU build would run instead)
  step install 60 bash -c "$(declare -f install); PY=$PY; work=$work; install" || { cat "$OUT/steps.tsv"; exit 1; }
  export PYTHONPATH=/tmp/site:/tmp/site-edgekit:/tmp/site-extra
  step nvidia-smi 10 bash -c "nvidia-smi > '$OUT/nvidia-smi.txt'"
  step providers 20 "$PY" -c 'import onnxruntime as o; o.preload_dlls(); print(o.__version__, o.__file__, o.get_available_providers())'
else
  PY=${PY:-$REPO/.venv/bin/python}
  [[ $PY != */* ]] || PY=$(from_caller "$PY")
  device=cpu
  max_time=0.5
  budget1=0.3
  budget32=0.3
  min_runs=3
  SCALE=${SCALE:-6}  # the steps' limits are a GPU's; two busy cores take several times longer
  BIG=${BIG_CPU:-2}  # a dry run: YOLOv8n 640 at batch 32 takes seconds a call on two cores
  work=${OUT}/work
  mkdir -p "$work"
  rm -rf "$work/models-src"
  cp -r "$(from_caller "${MODELS_SRC:-$REPO/.gpu-build/models-src}")" "$work/models-src"
  [ -f "$REPO/.gpu-build/here-vm.json" ] && cp "$REPO/.gpu-build/here-vm.json" "$work/"
  [ -d "$REPO/.gpu-build/quickstart" ] && cp -r "$REPO/.gpu-build/quickstart" "$work/"
fi
models=$work/models

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
  qs=$work/quickstart
  step doctor 30 bash -c "ek doctor > '$OUT/doctor.txt' 2>&1"
  step info 30 bash -c "ek info '$qs/model_int8.onnx' > '$OUT/info.txt' 2>&1"
  step bench-quickstart 240 bash -c "ek bench '$qs'/model*.onnx --device cuda,cpu --max-time 3 \
    --out '$OUT/bench-quickstart.json' > '$OUT/bench-quickstart.txt' 2>&1"
  cat "$OUT/doctor.txt" "$OUT/info.txt" "$OUT/bench-quickstart.txt" "$OUT/steps.tsv"
  exit 0
fi

# the dynamic-batch and batch-32 twins of every file (seconds: declared shapes edited)
step variants 30 "$PY" "$REPO/bench/gpu_modes.py" variants "$work/models-src" "$models" --batch "$BIG"
step doctor 20 bash -c "ek doctor > '$OUT/doctor.txt' 2>&1"
# plain / IO binding / CUDA graph on the fixed and the dynamic-batch file, every model and precision
step modes-b1 90 "$PY" "$REPO/bench/gpu_modes.py" time "$models" --batch 1 --device "$device" \
  --budget "$budget1" --min-runs "$min_runs" --out "$OUT/modes-b1.json"
step modes-b$BIG 100 "$PY" "$REPO/bench/gpu_modes.py" time "$models" --batch "$BIG" --device "$device" \
  --budget "$budget32" --min-runs "$min_runs" --out "$OUT/modes-b$BIG.json"
# the bench as a user runs it: the dynamic-batch files (what edgekit exports) at both batches, the
# fixed batch-1 fp32 files beside them, with the profile the int8 verdict reads
fixed1=$(ls "$models"/*.onnx | grep -Ev '_(dyn|b[0-9]+|fp16|int8)' | tr '\n' ' ')
step bench-b1 80 bash -c "ek bench '$models'/*_dyn*.onnx $fixed1 --device $device --batch 1 \
  --max-time $max_time --profile --out '$OUT/bench-b1.json' > '$OUT/bench-b1.txt' 2>&1"
step bench-b$BIG 60 bash -c "ek bench '$models'/*_dyn*.onnx --device $device --batch $BIG \
  --max-time $max_time --profile --out '$OUT/bench-b$BIG.json' > '$OUT/bench-b$BIG.txt' 2>&1"
if [ -f "$work/here-vm.json" ] && [ -f "$OUT/bench-b1.json" ]; then
  # this machine's CPU rows first, so the speed-ups in brackets are against its MobileNetV2
  step compare 10 bash -c "ek compare '$work/here-vm.json' '$OUT/bench-b1.json' \
    --baseline mobilenetv2_dyn.onnx:onnxruntime:cpu --markdown > '$OUT/compare.md' 2>&1"
fi
if [ "$mode" = gpu ]; then
  # TensorRT runs (and builds, then caches, its engine), or the row says which library keeps it out
  step tensorrt 30 bash -c "ek bench '$models/mobilenetv2_dyn.onnx' --device tensorrt --max-time 1 \
    --no-save --json > '$OUT/tensorrt.json' 2> '$OUT/tensorrt.txt'"
  step tests 50 bash -c 'gpu_tests --junitxml "$OUT/tests.xml"'
  tail -3 "$OUT/tests.txt"
fi
step summary 10 bash -c "'$PY' '$REPO/bench/gpu_modes.py' summary '$OUT' > '$OUT/summary.txt'"
cat "$OUT/summary.txt" 2>/dev/null
echo "== done in $((SECONDS - start)) s; steps:"
cat "$OUT/steps.tsv"
# at most 8 files come back from a device call: the JSONs, the log and the summary as they are, the
# rest in one archive (the models and the working folder stay behind)
(cd "$OUT" && ls | grep -Ev '^(bench-b[0-9]+\.json|modes-b[0-9]+\.json|gpu_check\.log|summary\.txt|extras\.tgz|work)$' \
  | tar -czf extras.tgz -T - --remove-files)
