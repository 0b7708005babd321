from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Annotated, Any

import typer

from edgekit.cli.core import app, command


@app.command()
@command
def info(
    model: Annotated[Path, typer.Argument(help="A .tflite, .onnx or .keras model.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print the card as JSON.")] = False,
) -> None:
    """Show the model card inside a file, with its tensors and size."""
    from edgekit.runtime.files import ModelFile

    file = ModelFile.open(model)
    card = file.card
    inferred = card is None
    tensors = _tensors(file, need_session=inferred)
    if card is None:  # any file is shown: a known detector's card, else its tensors
        card = _inferred_card(file, tensors)
    if json_out:
        typer.echo(card.to_json(indent=2))
        return
    typer.echo(printable(f"{model}  ({file.size / 1024:.1f} KB)"))
    rows = [
        ("card", "inferred by edgekit (the file has none inside)" if inferred else "inside the file"),
        *_inferred_from(card),
        ("task", card.task),
        ("labels", ", ".join(card.labels[:20]) + (" ..." if len(card.labels) > 20 else "")),
        ("input", _as_in_file(card.input, tensors, "tensor in")),
        ("output", _as_in_file(card.output, tensors, "tensor out")),
        ("preprocess", ", ".join(f"{k}={_brief(v)}" for k, v in card.preprocess.items())),
        ("format", f"{card.format} {card.quantization}"),
        ("io quantization", str(card.io_quantization or "float input and output")),
        ("recipe", f"{card.recipe} {card.hparams}"),
        ("dataset", f"{card.dataset.get('description', card.dataset.get('name', ''))}"),
        ("metrics", ", ".join(f"{k}={v}" for k, v in card.metrics.items() if not _per_class(v))),
        (
            "parity",
            ", ".join(
                f"{k}={v}"
                for k, v in card.parity.items()
                if k not in ("bar", "failures", "metrics", "metrics_keras", "checked", "data")
                and not _per_class(v)
            )
            or "-",
        ),
        ("weights sha256", card.weights_sha256),
        ("created", f"{card.created} by edgekit {card.edgekit_version}"),
    ]
    rows.extend(_tensor_rows(tensors))
    ops = file.ops
    if ops is not None:
        rows.append(("ops", ops.summary() or ops.note))
        rows.extend(("warning", w) for w in ops.warnings())
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        typer.echo(f"  {k.ljust(width)}  {printable(v)}")
    for where, scores in (("metrics", card.metrics), ("parity", card.parity)):
        for key, table in scores.items():
            if _per_class(table):
                typer.echo(f"  {where} {key}:")
                for line in per_class_table(table):
                    typer.echo(f"    {printable(line)}")


def _per_class(value: object) -> bool:
    """Whether a card value is a per-class table: {class: {score: value}}."""
    return isinstance(value, dict) and bool(value) and all(isinstance(v, dict) for v in value.values())


def per_class_table(table: dict[str, dict[str, Any]], most: int = 30) -> list[str]:
    """Per-class scores as a table, one short line per class (at most `most`; `--json` has all)."""
    columns = list(dict.fromkeys(k for scores in table.values() for k in scores))

    def cell(v: object) -> str:
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    cells = [["class", *columns]]
    cells += [
        [str(c), *(cell(scores.get(k, "")) for k in columns)] for c, scores in list(table.items())[:most]
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns) + 1)]
    lines = [
        "  ".join(
            v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in cells
    ]
    if len(table) > most:
        lines.append(f"... and {len(table) - most} more classes (--json shows them all)")
    return lines


def _inferred_card(file: Any, tensors: _Tensors):
    """The card `run` and `bench` would use for a file with none: a known detector's, else its
    tensors (from the session `_tensors` opened: a file with no card must open here to be shown)."""
    from edgekit.runtime.inferred_cards import infer_card
    from edgekit.runtime.tasks.tensor import tensor_card

    return infer_card(file, tensors.session) or tensor_card(tensors.session)


def _inferred_from(card) -> list[tuple[str, str]]:
    """Where each field of an inferred card came from (file metadata, tensor shapes, a known
    configuration, defaults), as the inference recorded it in `postprocess.inferred_from`."""
    sources = card.postprocess.get("inferred_from")
    if not isinstance(sources, dict):
        return []
    return [(f"{field} from", str(source)) for field, source in sources.items()]


def printable(text: str) -> str:
    """`text` with control characters escaped (`\\x1b`, `\\n`): a card comes from elsewhere, and a
    label holding a terminal escape code must not rewrite the user's screen or forge a line."""
    return "".join(c if c == " " or unicodedata.category(c)[0] not in "CZ" else ascii(c)[1:-1] for c in text)


class _Tensors(list):
    """The file's tensors as its runtime sees them ("tensor in"/"tensor out", TensorInfo), with the
    session they were read from (closed: its tensors and file are what is kept)."""

    session: Any = None


def _tensors(file: Any, need_session: bool = False) -> _Tensors | str:
    """The file's tensors as its runtime sees them, or why they cannot be read here (the card is
    still worth showing); Keras files are left out, opening them imports TensorFlow."""
    from edgekit.errors import EdgekitError
    from edgekit.runtime.backends import open_model

    if file.kind.name in ("keras", "savedmodel") and not need_session:
        return _Tensors()
    try:
        with open_model(file) as session:
            found = _Tensors(
                [("tensor in", t) for t in session.inputs] + [("tensor out", t) for t in session.outputs]
            )
            found.session = session
            return found
    except EdgekitError as e:
        if need_session:
            raise
        return str(e)


def _as_in_file(spec: Any, tensors: list[tuple[str, Any]] | str, kind: str) -> str:
    """The card's input/output as the file holds it: an int8 file's input is `int8 [1,28,28,1]`,
    not the float32 [None,28,28,1] of the Keras model the card was written from; the values it
    stands for are said beside it."""
    said = f"{spec.name} {list(spec.shape)} {spec.dtype} {spec.layout}".rstrip()
    real = next((t for k, t in tensors if k == kind), None) if isinstance(tensors, list) else None
    if real is None:
        return said
    shape = [d if d is not None else "?" for d in real.shape]
    line = f"{spec.name} {shape} {real.dtype.name} {spec.layout}".rstrip()
    if real.dtype.name != spec.dtype and real.quant:
        line += f" ({spec.dtype} values, quantized: scale {real.quant[0]:.6g} zero point {real.quant[1]})"
    return line


def _tensor_rows(tensors: list[tuple[str, Any]] | str) -> list[tuple[str, str]]:
    """One row per tensor of the file (dtype, shape, int8 scale/zero point)."""
    if isinstance(tensors, str):
        return [("tensors", tensors)]
    rows = []
    for kind, t in tensors:
        quant = f"  scale {t.quant[0]:.6g} zero point {t.quant[1]}" if t.quant else ""
        shape = [d if d is not None else "?" for d in t.shape]
        rows.append((kind, f"{t.name} {shape} {t.dtype.name}{quant}"))
    return rows


def _brief(value: object, most: int = 8) -> str:
    """A card value for people: long lists and tables (a tokenizer's vocabulary) shown by their size
    and first few entries; `--json` prints them whole."""
    if isinstance(value, dict) and len(value) > most:
        head = ", ".join(f"{k}: {_brief(v)}" for k, v in list(value.items())[:3])
        return f"{{{head}, ... {len(value)} entries}}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_brief(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple) and len(value) > most:
        return f"[{', '.join(map(str, value[:3]))}, ... {len(value)} items]"
    return str(value)
