"""Mutation testing of the modules where a wrong number is silent: image pre-processing, the
detection formats and NMS, the SSD anchors, the tasks' post-processing, MFCC and audio framing,
the quantization feed/output and the card's pre-processing fields.

Each mutant is one small change to a module (an operator swapped, a number moved by one, a
condition negated, a loop that never runs...), made by cosmic-ray on the checkout's own file, so
the editable install imports it; the module's focused tests then run in a fresh interpreter. A
mutant the tests pass with has survived: either a test is missing, or the mutant changes nothing
a caller can see (equivalent), which bench/mutation_equivalent.toml says with a one-line reason.

To finish in minutes on two cores, the focused tests are first run once under coverage with one
context per test; a mutant then runs only the tests that executed its lines (a mutant on lines no
focused test executes survives without a run), stopping at the first failure.

    pip install -e ".[test,mutation]"
    python bench/mutation.py                  # every module
    python bench/mutation.py preprocess mfcc  # some of them
    python bench/mutation.py --list           # the modules, their files and tests
    # the score before new tests, then only its survivors against today's tests:
    python bench/mutation.py mfcc --tests-at main --out bench/results/mutation-before.json
    python bench/mutation.py mfcc --survivors-of bench/results/mutation-before.json
Saves bench/results/mutation.json (one entry per module, the modules not run keep their entry);
prints each survivor with its line. The session databases stay in build/mutation/ for
`cr-report build/mutation/MODULE.sqlite`. Run by hand, never in the default suite: it rewrites
the module's file while it runs (the original is saved beside the database first and put back
by the next run if this one is killed)."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, from PyPI (a dependency there)
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "build" / "mutation"
RESULTS = ROOT / "bench" / "results" / "mutation.json"
EQUIVALENT = ROOT / "bench" / "mutation_equivalent.toml"


@dataclass(frozen=True)
class Target:
    """One module and the tests that hold its numbers."""

    path: str  # relative to the repository root
    tests: tuple[str, ...]  # pytest arguments: files, node ids, or "-k" and an expression
    why: str
    # the functions (and classes) to mutate, where the module also holds drawing, messages or
    # plumbing whose numbers are not the subject; empty: the whole module
    only: tuple[str, ...] = ()


TARGETS = {
    "preprocess": Target(
        "runtime/preprocess.py",
        (
            "tests/test_preprocess_reference.py",
            "tests/test_everyday.py",
            "tests/test_runtime.py",
            "-k",
            "preprocess_reference or mnist_preprocessing or light_ground or preprocessing_matches_training",
        ),
        "resize, letterbox/crop choice, the MNIST crop, normalisation, (de)quantization, the card's image fields",
        ("ImageSpec", "to_dict", "from_dict", "_one_of", "mnist_style", "light_ground", "_border")
        + ("normalize", "prepare_image", "fit_image", "centre_crop", "quantize", "dequantize"),
    ),
    "detection": Target(
        "runtime/detection.py",
        (
            "tests/test_nms_reference.py",
            "tests/test_detection.py",
            "tests/test_detection_formats.py",
            "tests/test_ultralytics.py",
        ),
        "letterbox, box mapping back to the frame, IoU, NMS (plain, class-aware)",
        ("_letterbox_info", "letterbox", "unletterbox_points", "unletterbox_boxes", "xywh_to_xyxy")
        + ("box_iou", "nms", "overlapping", "_nms_numpy", "class_aware_nms"),
    ),
    "yolo": Target(
        "runtime/detection_formats/yolo.py",
        (
            "tests/test_yolo_reference.py",
            "tests/test_detection.py",
            "tests/test_detection_formats.py",
            "tests/test_ultralytics.py",
        ),
        "YOLOv5/v8 and end-to-end output decoding",
        ("decode_yolov8", "decode_yolov5", "decode_yolo", "_yolo_rows", "select_yolo", "finish_yolo")
        + ("head_rows", "detect_yolo_layout"),
    ),
    "ssd": Target(
        "runtime/detection_formats/ssd.py",
        (
            "tests/test_ssd_anchors_reference.py",
            "tests/test_detection.py",
            "tests/test_detection_formats.py",
            "tests/test_mediapipe_ssd.py",
        ),
        "SSD anchors, the decoding tables made from them, the mapping back to the frame",
        ("layers", "_square", "ssd_anchors", "anchors", "logit_threshold", "decoder", "to_frame"),
    ),
    "darknet_format": Target(
        "runtime/detection_formats/darknet.py",
        ("tests/test_darknet.py", "tests/test_detection_formats.py"),
        "Darknet (YOLOv3 via OpenCV DNN) output decoding",
    ),
    "edgekit_grid": Target(
        "runtime/detection_formats/edgekit_grid.py",
        ("tests/test_detection_formats.py", "tests/test_tasks.py"),
        "the course detector's grid decoding",
    ),
    "classify": Target(
        "runtime/tasks/classify.py",
        ("tests/test_classify_task.py", "tests/test_tasks.py"),
        "the image classifier's fast path: lookup table, top-k, softmax",
        (
            "top_k",
            "softmax",
            "ClassifyImage",
            "__init__",
            "pixels",
            "preprocess",
            "probabilities",
            "postprocess",
        ),
    ),
    "mfcc": Target(
        "runtime/audio/mfcc.py",
        ("tests/test_mfcc_reference.py", "tests/test_audio.py", "-k", "not tf_signal"),
        "pre-emphasis, window, mel filterbank, log floor, DCT",
        ("MfccParams", "max_frequency", "_hz_to_mel", "_tables", "mel_filterbank", "_power_frames")
        + ("_log_mel_batch", "log_mel", "mfcc", "mfcc_batch"),
    ),
    "framing": Target(
        "runtime/audio/framing.py",
        ("tests/test_mfcc_reference.py", "tests/test_audio.py", "-k", "not tf_signal"),
        "a live stream cut into overlapping windows",
    ),
    "tensors": Target(
        "runtime/tensors.py",
        (
            "tests/test_tensors.py",
            "tests/test_nonfinite.py",
            "tests/test_tasks.py",
            "tests/test_detection_formats.py",
        ),
        "quantized input feed and output read-back",
        ("is_quantized", "to_tensor", "from_tensor", "reader", "read"),
    ),
    "card": Target(
        "edgekit/card.py",
        ("tests/test_core.py", "tests/test_digest.py"),
        "the model card's fields and their checks",
    ),
    "inferred_cards": Target(
        "runtime/inferred_cards.py",
        ("tests/test_ultralytics.py", "tests/test_detect_task.py", "tests/test_mediapipe_ssd.py"),
        "cards inferred for Ultralytics and MediaPipe files: input size, letterbox grey, scale, thresholds",
        ("ssd_card", "_ultralytics_card"),
    ),
}


# Operators: one meaningful change per site, as mutmut makes them, rather than cosmic-ray's every
# pair (a + b -> a ** b, a << b, ...: twelve mutants per operator, nearly all killed by any test).
OPERATORS = re.compile(
    r"core/("
    r"ReplaceBinaryOperator_(Add_Sub|Sub_Add|Mul_Div|Div_Mul|FloorDiv_Div|Mod_FloorDiv|Pow_Mul"
    r"|LShift_RShift|RShift_LShift|BitOr_BitAnd|BitAnd_BitOr|BitXor_BitOr)"
    r"|ReplaceComparisonOperator_(Eq_NotEq|NotEq_Eq|Lt_LtE|LtE_Lt|Gt_GtE|GtE_Gt|Is_IsNot|IsNot_Is)"
    r"|ReplaceUnaryOperator_(USub_UAdd|Delete_Not)"
    r"|AddNot|ReplaceTrueWithFalse|ReplaceFalseWithTrue|ReplaceAndWithOr|ReplaceOrWithAnd"
    r"|ReplaceBreakWithContinue|ReplaceContinueWithBreak|NumberReplacer|ZeroIterationForLoop"
    r"|ExceptionReplacer)$"
)


def pytest_cmd(*args: str) -> list[str]:
    # no cache (mutants must not reorder or deselect tests), no bytecode (a mutant written within
    # the same second as the last, at the same size, would otherwise run the last one's .pyc)
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}


def coverage_by_line(target: Target, name: str) -> tuple[dict[int, set[str]], float]:
    """Run the focused tests once under coverage: for each executed line of the module, the tests
    that ran it ("" for lines run at import); and the run's wall time."""
    from coverage import CoverageData

    data_file = WORK / f"{name}.coverage"
    data_file.unlink(missing_ok=True)
    t0 = time.perf_counter()
    run = subprocess.run(
        pytest_cmd(
            f"--cov={ROOT / Path(target.path).parent}",
            "--cov-context=test",
            "--cov-report=",
            *target.tests,
        ),
        env={**environment(), "COVERAGE_FILE": str(data_file)},
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    if run.returncode != 0:
        sys.exit(f"{name}: the focused tests fail on the unmutated code:\n{run.stdout[-3000:]}")
    data = CoverageData(basename=str(data_file))
    data.read()
    module = str((ROOT / target.path).resolve())
    by_line: dict[int, set[str]] = {}
    for line, contexts in (data.contexts_by_lineno(module) or {}).items():
        by_line[line] = {c.rpartition("|")[0] if "|" in c else c for c in contexts}
    if not by_line:
        sys.exit(f"{name}: the focused tests never import {target.path}")
    return by_line, wall


def mutants(target: Target) -> list:
    """cosmic-ray's work items for the module, limited to OPERATORS and the target's functions.
    A number is moved up by one only (cosmic-ray also moves it down: a second mutant on the same
    site, killed by the same tests nearly always, at twice the cost)."""
    from cosmic_ray.commands.init import _all_work_items

    items, seen = [], set()
    for w in _all_work_items([ROOT / target.path], {}):
        spec = w.mutations[0]
        if not OPERATORS.match(spec.operator_name):
            continue
        if target.only and spec.definition_name not in target.only:
            continue
        if spec.operator_name == "core/NumberReplacer":
            if (spec.start_pos, spec.end_pos) in seen:
                continue
            seen.add((spec.start_pos, spec.end_pos))
        items.append(w)
    return items


def load_equivalent() -> dict[str, list[dict]]:
    if not EQUIVALENT.exists():
        return {}
    return tomllib.loads(EQUIVALENT.read_text())


def mutant_key(spec, lines: list[str]) -> tuple[str, str, int]:
    """What names a mutant across edits of the file: its operator, its line's text, its column."""
    line, col = spec.start_pos
    return spec.operator_name, lines[line - 1].strip(), col


def find_equivalent(spec, lines: list[str], listed: list[dict]) -> str | None:
    op, code, col = mutant_key(spec, lines)
    for entry in listed:
        if entry["operator"] == op and entry["code"] == code and entry.get("column", col) == col:
            return entry["reason"]
    return None


def diff_line(diff: str) -> str:
    """The mutated line from a unified diff (the '+' line)."""
    added = [x[1:].strip() for x in diff.splitlines() if x.startswith("+") and not x.startswith("+++")]
    return " / ".join(added)


def tests_root(ref: str | None) -> Path:
    """Where the tests run from: the checkout, or its tests as they were at git REF (the score
    before new tests), unpacked beside the session databases."""
    if ref is None:
        return ROOT
    root = WORK / ("tests-at-" + re.sub(r"[^A-Za-z0-9_.-]", "_", ref))
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", ref, "tests", "pyproject.toml"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
    return root


def existing(tests: tuple[str, ...], root: Path) -> tuple[str, ...]:
    """The target's pytest arguments less the test files that `root` does not have."""
    keep: list[str] = []
    for i, arg in enumerate(tests):
        is_file = arg.startswith("tests/") and (i == 0 or tests[i - 1] != "-k")
        if not is_file or (root / arg.split("::")[0]).exists():
            keep.append(arg)
    return tuple(keep)


def run_target(name: str, target: Target, limit: int | None, root: Path, carried: set | None) -> dict:
    """Every mutant of one module against its focused tests (run from `root`); with `carried`, only
    the mutants whose keys it holds (survivors of an earlier run) are run, the rest count as killed."""
    from cosmic_ray.mutating import mutate_and_test
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkResult

    path = ROOT / target.path
    WORK.mkdir(parents=True, exist_ok=True)
    backup = WORK / f"{name}.orig.py"
    if backup.exists():  # a run was killed with a mutant in place
        shutil.copyfile(backup, path)
        print(f"{name}: put back {target.path} from the copy a killed run left", file=sys.stderr)
    shutil.copyfile(path, backup)
    original = path.read_bytes()
    lines = original.decode().splitlines()
    target = Target(target.path, existing(target.tests, root), target.why, target.only)
    os.chdir(root)  # cosmic-ray runs the test command in the working directory
    by_line, baseline = coverage_by_line(target, name)
    timeout = 3 * baseline + 30
    items = mutants(target)
    if limit:
        items = items[:limit]
    listed = load_equivalent().get(name, [])
    db_path = WORK / f"{name}.sqlite"
    db_path.unlink(missing_ok=True)
    counts = {"killed": 0, "survived": 0, "not_covered": 0, "equivalent": 0, "timeout": 0, "incompetent": 0}
    survivors, equivalents = [], []
    carried_over = 0
    print(f"{name}: {len(items)} mutants of {target.path}, tests {baseline:.1f} s", file=sys.stderr)
    t0 = time.perf_counter()
    with use_db(str(db_path), WorkDB.Mode.create) as db:
        db.add_work_items(items)
        for i, item in enumerate(items):
            spec = item.mutations[0]
            first, last = spec.start_pos[0], spec.end_pos[0]
            tests = set().union(*(by_line.get(n, set()) for n in range(first, last + 1)))
            reason = find_equivalent(spec, lines, listed)
            if carried is not None and mutant_key(spec, lines) not in carried:
                result = WorkResult(
                    worker_outcome=WorkerOutcome.SKIPPED,
                    test_outcome=TestOutcome.KILLED,
                    output="killed in the run this one continues",
                )
            elif not tests:
                result = WorkResult(
                    worker_outcome=WorkerOutcome.SKIPPED,
                    test_outcome=TestOutcome.SURVIVED,
                    output="no focused test executes this line",
                )
            else:
                # a line run at import (a constant, a default) is held by every focused test
                args = list(target.tests) if "" in tests else sorted(tests)
                command = shlex.join(pytest_cmd("-x", "-W", "ignore", *args))
                result = mutate_and_test([spec], command, timeout)
                if result.test_outcome == TestOutcome.SURVIVED and "" not in tests:
                    # confirmed with every focused test: coverage credits a cached function's lines
                    # (lru_cache) to the first test that filled the cache, not to the later ones
                    command = shlex.join(pytest_cmd("-x", "-W", "ignore", *target.tests))
                    result = mutate_and_test([spec], command, timeout)
            if path.read_bytes() != original:
                path.write_bytes(original)
                sys.exit(f"{name}: {target.path} was not restored after a mutant; put back from {backup}")
            db.set_result(item.job_id, result)
            if result.worker_outcome == WorkerOutcome.NO_TEST:
                continue
            record = {
                "line": spec.start_pos[0],
                "column": spec.start_pos[1],
                "operator": spec.operator_name,
                "code": lines[spec.start_pos[0] - 1].strip(),
                "mutant": diff_line(result.diff or "") if result.diff else None,
            }
            if result.test_outcome == TestOutcome.SURVIVED:
                if reason:
                    counts["equivalent"] += 1
                    equivalents.append({**record, "reason": reason})
                    continue
                kind = "not_covered" if result.worker_outcome == WorkerOutcome.SKIPPED else "survived"
                counts[kind] += 1
                survivors.append({**record, "why": kind})
            elif result.output == "killed in the run this one continues":
                counts["killed"] += 1
                carried_over += 1
            elif result.output == "timeout":
                counts["timeout"] += 1
            elif result.worker_outcome == WorkerOutcome.EXCEPTION:
                counts["incompetent"] += 1
            else:
                counts["killed"] += 1
            if reason and result.test_outcome != TestOutcome.SURVIVED:
                print(f"  listed as equivalent but killed: line {record['line']} {spec.operator_name}")
            if (i + 1) % 25 == 0:
                print(f"  {i + 1}/{len(items)} {counts} {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(original).digest()
    backup.unlink()
    killed = counts["killed"] + counts["timeout"] + counts["incompetent"]
    scored = killed + counts["survived"] + counts["not_covered"]
    return {
        "module": target.path,
        "what": target.why,
        "tests": list(target.tests),
        "tests_at": None if root == ROOT else root.name.removeprefix("tests-at-"),
        "mutants": scored + counts["equivalent"],
        **counts,
        "score": round(killed / scored, 4) if scored else None,
        # killed in the earlier run this one continues (--survivors-of), not run again
        "killed_earlier": carried_over,
        "seconds": round(time.perf_counter() - t0, 1),
        "survivors": sorted(survivors, key=lambda s: s["line"]),
        "equivalent_mutants": sorted(equivalents, key=lambda s: s["line"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help=f"some of: {', '.join(TARGETS)} (default: all)")
    parser.add_argument("--list", action="store_true", help="list the modules, files and tests")
    parser.add_argument("--limit", type=int, help="only the first N mutants of each module (a quick try)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON to update (default %(default)s)")
    parser.add_argument(
        "--tests-at",
        metavar="REF",
        help="run the tests as they were at git REF (e.g. the score before new tests)",
    )
    parser.add_argument(
        "--survivors-of",
        type=Path,
        metavar="JSON",
        help="run only the mutants that survived in an earlier run's JSON; the others count as killed "
        "(valid while no test that killed them was removed)",
    )
    args = parser.parse_args()
    unknown = [m for m in args.modules if m not in TARGETS]
    if unknown:
        parser.error(f"unknown module(s) {', '.join(unknown)}: use some of {', '.join(TARGETS)}")
    if args.list:
        for name, t in TARGETS.items():
            print(f"{name:15} {t.path:42} {' '.join(t.tests)}")
        return
    args.out = args.out.resolve()
    earlier = json.loads(args.survivors_of.read_text())["modules"] if args.survivors_of else None
    root = tests_root(args.tests_at)
    doc = json.loads(args.out.read_text()) if args.out.exists() else {}
    doc.setdefault("modules", {})
    for name in args.modules or list(TARGETS):
        carried = None
        if earlier is not None:
            if name not in earlier:
                sys.exit(f"{args.survivors_of} has no run of {name}")
            again = earlier[name]["survivors"] + earlier[name]["equivalent_mutants"]
            carried = {(x["operator"], x["code"], x["column"]) for x in again}
        entry = run_target(name, TARGETS[name], args.limit, root, carried)
        doc["modules"][name] = entry
        doc.update(
            tool="cosmic-ray " + _version("cosmic-ray"),
            operators=OPERATORS.pattern,
            python=platform.python_version(),
            cpu_count=os.cpu_count(),
            equivalent_file=str(EQUIVALENT.relative_to(ROOT)),
        )
        scored = [m for m in doc["modules"].values() if m["score"] is not None]
        killed = sum(m["killed"] + m["timeout"] + m["incompetent"] for m in scored)
        total = sum(
            m["killed"] + m["timeout"] + m["incompetent"] + m["survived"] + m["not_covered"] for m in scored
        )
        doc["overall_score"] = round(killed / total, 4) if total else None
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=1) + "\n")
        tmp.replace(args.out)
        print(
            f"{name}: {entry['score']:.1%} killed ({entry['mutants']} mutants, {entry['equivalent']} equivalent, "
            f"{entry['survived']} survived, {entry['not_covered']} not covered) in {entry['seconds']:.0f} s"
        )
        for s in entry["survivors"]:
            print(
                f"  {entry['module']}:{s['line']}:{s['column']} {s['operator']} [{s['why']}]: {s['mutant']}"
            )


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


if __name__ == "__main__":
    main()
