"""Follow one `edgekit` command call by call and count what its path does: the edgekit modules it
enters, the calls between them, the calls that go back up a layer (kernel 0 < runtime 1 < models and
export 2 < CLI and orchestration 3, as tests/test_layers.py defines them), how many times it enters
each module, how many model cards it parses (by the card's `format`: the source's and the
artifacts'), and how many times it opens each model file. Python's profiler hook sees every call,
its audit hook every `open`; nothing of the command is changed.

Run it against another checkout laid out as installed (`edgekit/` with `runtime/`, `models/`,
`export/` inside) by putting that folder first on PYTHONPATH: the figures of two versions of the
same command, side by side.

    python bench/call_path.py --out bench/results/call-path.json -- export run/model.keras --to tflite --quantize int8
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

ORCHESTRATION = ("edgekit.benchmark", "edgekit.evaluate_file", "edgekit.quickstart", "edgekit.remote")


def layer(module: str) -> int:
    if module.startswith("edgekit.cli") or any(
        module == o or module.startswith(o + ".") for o in ORCHESTRATION
    ):
        return 3
    if module.startswith(("edgekit.models", "edgekit.export")):
        return 2
    if module.startswith("edgekit.runtime"):
        return 1
    return 0


def follow(argv: list[str]) -> dict:
    from edgekit.card import ModelCard

    entered: collections.Counter[str] = collections.Counter()
    crossings = up = 0
    stack: list[str] = []
    cards: collections.Counter[str] = collections.Counter()
    opens: collections.Counter[str] = collections.Counter()
    watched = [Path(a).resolve() for a in argv if Path(a).suffix in (".keras", ".h5", ".tflite", ".onnx")]

    parse = ModelCard.from_dict.__func__

    def counted(cls, d):  # every card parsed, by the format it describes
        cards[str(d.get("format") if isinstance(d, dict) else "?")] += 1
        return parse(cls, d)

    ModelCard.from_dict = classmethod(counted)

    def audit(event: str, args: tuple) -> None:
        if event == "open" and isinstance(args[0], str | bytes | Path):
            path = Path(args[0] if not isinstance(args[0], bytes) else args[0].decode()).resolve()
            if path in watched or path.suffix in (".tflite", ".onnx"):
                opens[path.name] += 1

    def profile(frame, event: str, arg) -> None:
        nonlocal crossings, up
        if event == "call":
            module = frame.f_globals.get("__name__", "")
            here = stack[-1] if stack else ""
            stack.append(module)
            if not module.startswith("edgekit") or module == here:
                return
            entered[module] += 1
            if here.startswith("edgekit"):
                crossings += 1
                if layer(module) > layer(here):
                    up += 1
        elif event == "return" and stack:
            stack.pop()

    sys.addaudithook(audit)
    from edgekit.cli import main

    sys.argv = ["edgekit", *argv]
    sys.setprofile(profile)
    try:
        main()
    except SystemExit as e:
        code = e.code
    else:
        code = 0
    finally:
        sys.setprofile(None)
    return {
        "command": ["edgekit", *argv],
        "exit_code": code,
        "modules_entered": len(entered),
        "calls_between_modules": crossings,
        "calls_back_up_a_layer": up,
        "entries_by_module": dict(entered.most_common()),
        "cards_parsed_by_format": dict(cards),
        "model_file_opens": dict(opens),
        "edgekit_from": str(Path(sys.modules["edgekit"].__file__).parent),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="save the figures as JSON here")
    parser.add_argument("argv", nargs=argparse.REMAINDER, help="-- then the edgekit command's arguments")
    args = parser.parse_args()
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    figures = follow(argv)
    keep = {k: v for k, v in figures.items() if k != "entries_by_module"}
    top = dict(list(figures["entries_by_module"].items())[:12])
    print(json.dumps({**keep, "entries_by_module (top 12)": top}, indent=1), file=sys.__stderr__)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
