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
    rows = [(k, v) for k, v in card_rows(card, tensors, inferred) if v]  # nothing empty is shown
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


def card_rows(card: Any, tensors: Any, inferred: bool) -> list[tuple[str, str]]:
    """Every field of the card as a row for people (values in words and rounded numbers, never
    Python's reprs); a field with nothing in it gives an empty row, which is left out."""
    post = {k: v for k, v in card.postprocess.items() if k != "inferred_from"}
    where = "inferred by edgekit (the file has none inside)" if inferred else "inside the file"
    created = " ".join(p for p in (card.created, f"by edgekit {card.edgekit_version}") if p)
    labels = ", ".join(card.labels[:20]) + (
        f" ... {len(card.labels)} labels" if len(card.labels) > 20 else ""
    )
    parity = {
        k: v
        for k, v in card.parity.items()
        if k not in ("bar", "failures", "metrics", "metrics_keras", "checked", "data", "note", "warning")
        and not _per_class(v)
    }
    said = [*(card.parity.get("failures") or []), card.parity.get("warning"), card.parity.get("note")]
    return [
        ("card", f"{where}, card version {card.schema_version}"),
        *_inferred_from(card),
        ("task", card.task),
        ("labels", labels),
        ("input", _as_in_file(card.input, tensors, "tensor in")),
        ("output", _as_in_file(card.output, tensors, "tensor out")),
        ("preprocess", shown_pairs(card.preprocess)),
        ("postprocess", shown_pairs(post)),
        ("format", f"{card.format} {card.quantization}"),
        ("io quantization", _io_quantization(card.io_quantization)),
        ("recipe", card.recipe),
        ("hparams", shown_pairs(card.hparams)),
        ("dataset", _dataset(card.dataset)),
        ("metrics", shown_pairs({k: v for k, v in card.metrics.items() if not _per_class(v)}, most=100)),
        ("parity", shown_pairs(parity, most=100)),
        ("parity note", "; ".join(str(n) for n in said if n)),
        ("weights sha256", card.weights_sha256),
        ("file sha256", card.file_sha256),
        ("created", created if card.created else ""),
    ]


def shown(value: Any, most: int = 8) -> str:
    """A card value for people: numbers rounded to 4 significant digits, yes/no, lists and tables
    in brackets without quotes, long ones by their size and first few entries (`--json` prints
    them whole)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.0f}" if abs(value) >= 1e4 else f"{value:.4g}"
    if isinstance(value, dict):
        return f"({shown_pairs(value, most)})" if value else "none"
    if isinstance(value, list | tuple):
        items = [shown(v, most) for v in value[: 3 if len(value) > most else most]]
        more = f", ... {len(value)} items" if len(value) > most else ""
        return f"[{', '.join(items)}{more}]"
    return str(value) if str(value) else "none"


def shown_pairs(table: dict[str, Any], most: int = 8) -> str:
    """`key=value, ...` for a card's table, None values left out; a long table (a tokenizer's
    vocabulary) by its size and first entries."""
    items = [(k, v) for k, v in table.items() if v is not None]
    head = items[:3] if len(items) > most else items
    text = ", ".join(f"{k}={shown(v, most)}" for k, v in head)
    return text + (f", ... {len(items)} entries" if len(items) > most else "")


def _io_quantization(io: dict[str, Any]) -> str:
    """`input int8 (scale 0.003922, zero point -128); output ...`, or float input and output."""
    if not io:
        return "float input and output"
    parts = []
    for name, q in io.items():
        if isinstance(q, dict) and "scale" in q:
            parts.append(
                f"{name} {q.get('dtype', '')} scale {shown(q['scale'])} zero point {shown(q.get('zero_point'))}"
            )
        else:
            parts.append(f"{name} {shown(q)}")
    return "; ".join(p.replace("  ", " ") for p in parts)


def _dataset(dataset: dict[str, Any]) -> str:
    """What the model was trained on: its description (else its name), then where it came from."""
    what = str(dataset.get("description") or dataset.get("name") or "")
    rest = {k: v for k, v in dataset.items() if k not in ("description", "name")}
    return "; ".join(p for p in (what, shown_pairs(rest)) if p)


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
    if isinstance(sources, str) and sources:  # one source for the whole card (a tensor model's)
        return [("task from", sources)]
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
    said = f"{spec.name} {dims(spec.shape)} {spec.dtype} {spec.layout}".rstrip()
    real = next((t for k, t in tensors if k == kind), None) if isinstance(tensors, list) else None
    if real is None:
        return said
    line = f"{spec.name} {dims(real.shape)} {real.dtype.name} {spec.layout}".rstrip()
    if real.dtype.name != spec.dtype and real.quant:
        line += f" ({spec.dtype} values, quantized: scale {real.quant[0]:.6g} zero point {real.quant[1]})"
    return line


def dims(shape: Any) -> str:
    """A shape for people: `[?, 28, 28, 1]`, ? a size the file leaves free."""
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _tensor_rows(tensors: list[tuple[str, Any]] | str) -> list[tuple[str, str]]:
    """One row per tensor of the file (dtype, shape, int8 scale/zero point)."""
    if isinstance(tensors, str):
        return [("tensors", tensors)]
    rows = []
    for kind, t in tensors:
        quant = f"  scale {t.quant[0]:.6g} zero point {t.quant[1]}" if t.quant else ""
        rows.append((kind, f"{t.name} {dims(t.shape)} {t.dtype.name}{quant}"))
    return rows
