"""Selective quantization: when an int8 file misses its bar, find the activations that lose
accuracy and keep the layers around them in float, adding layers until the bar passes.

Why per activation, and why its producer *and* its consumers: an activation loses accuracy when one
int8 scale cannot hold it (one outlier channel a hundred times wider than the rest rounds the rest
to zero, as LayerNorm inputs in Transformers do). Keeping only the layer that makes it float does
not help: the next int8 layer quantizes it again. So each culprit keeps every layer that reads or
writes it in float, and the activation is never quantized.

Each format adds only its per-layer comparison (`COMPARISONS`, one function per format module in
`export/formats/`): run the calibration samples through the int8 graph and its float one and say,
per activation, how much quantizing it lost (`channel_loss`). The search here and the report are
the same for every format."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgekit.errors import ConfigError
from edgekit.registry import Registry

# how many rounds of conversion + validation the search may take (1, 2, 4, 8 culprits)
MAX_ROUNDS = 4
# at most this share of the ranked activations may be kept float: beyond it the file is a float
# model with extra steps, and the mode's honest answer is "rejected"
MAX_SHARE = 0.25
MIN_CULPRITS = 2  # a small model may still try its worst two (an outlier's writer and its reader)
# a channel whose signal is below this fraction of the widest channel's is not measured (a softmax
# class that is never likely, a dead ReLU unit): its relative error says nothing about accuracy
NEGLIGIBLE = 1e-3


@dataclass(frozen=True)
class LayerLoss:
    """What quantizing one activation lost, and the layers to keep in float to spare it."""

    tensor: str  # the activation, as the format names it
    op: str  # the kind of layer that writes it (FULLY_CONNECTED, MatMul, LayerNorm, Softmax...)
    loss: float  # `channel_loss`: 0 exact, 1 nothing left of the signal
    keep: tuple[str, ...]  # the format's node names: the writer and every reader of `tensor`

    def to_dict(self) -> dict[str, Any]:
        return {"tensor": self.tensor, "op": self.op, "loss": round(self.loss, 4), "layers": list(self.keep)}


@dataclass(frozen=True)
class Comparison:
    """A format's per-layer comparison: (keras model, card, options, calibration inputs) ->
    every quantized activation's loss (any order), and every node name the format could keep float
    (what `--float-layers` is matched against)."""

    format: str
    compare: Callable[[Any, Any, Any, np.ndarray], tuple[list[LayerLoss], list[str]]]
    how: str = ""  # one line for the report: what was compared

    @property
    def name(self) -> str:
        return self.format


COMPARISONS: Registry[Comparison] = Registry("per-layer comparison", package="edgekit.export.formats")


def channel_loss(reference: np.ndarray, quantized: np.ndarray) -> float:
    """Mean over channels (the last axis) of the relative error ||q - f|| / ||f||, channels with
    negligible signal left out. Per channel, because one wide channel hides the loss of all the
    others in a whole-tensor error."""
    f = np.asarray(reference, np.float64)
    q = np.asarray(quantized, np.float64).reshape(f.shape)
    if f.ndim == 0 or f.size == 0:
        return 0.0
    f2, d2 = f.reshape(-1, f.shape[-1]), (q - f).reshape(-1, f.shape[-1])
    signal = np.sqrt((f2**2).sum(0))
    if not signal.max() > 0:
        return 0.0
    live = signal > NEGLIGIBLE * signal.max()
    return float(np.mean(np.sqrt((d2[:, live] ** 2).sum(0)) / signal[live]))


def rank(losses: Iterable[LayerLoss]) -> list[LayerLoss]:
    """Worst first; an activation listed twice (several calibration batches) keeps its mean."""
    by_tensor: dict[str, list[LayerLoss]] = {}
    for item in losses:
        by_tensor.setdefault(item.tensor, []).append(item)
    merged = [
        LayerLoss(items[0].tensor, items[0].op, float(np.mean([i.loss for i in items])), items[0].keep)
        for items in by_tensor.values()
    ]
    return sorted(merged, key=lambda item: (-item.loss, item.tensor))


def resolve(names: Sequence[str], nodes: Sequence[str]) -> tuple[str, ...]:
    """The nodes that `--float-layers` names: a node's exact name, or a part of it (a Keras layer
    name such as `dense_1` matches every node the converter made from that layer)."""
    found: list[str] = []
    for name in names:
        hits = [n for n in nodes if n == name] or [n for n in nodes if name in n]
        if not hits:
            some = ", ".join(list(nodes)[:6])
            raise ConfigError(f"--float-layers {name!r} names no layer of this model: it has {some}, ...")
        found += [h for h in hits if h not in found]
    return tuple(found)


@dataclass
class Selection:
    """The search's record: what stayed float and why (the `float_layers` entry of the report)."""

    forced: tuple[str, ...] = ()
    culprits: list[LayerLoss] = field(default_factory=list)
    rounds: list[dict[str, Any]] = field(default_factory=list)  # one per conversion tried
    how: str = ""
    note: str = ""

    @property
    def layers(self) -> tuple[str, ...]:
        kept = list(self.forced)
        for c in self.culprits:
            kept += [n for n in c.keep if n not in kept]
        return tuple(kept)

    def to_dict(self) -> dict[str, Any]:
        return {
            "layers": list(self.layers),
            "forced": list(self.forced),
            "why": [c.to_dict() for c in self.culprits],
            "compared": self.how,
            "rounds": self.rounds,
            **({"note": self.note} if self.note else {}),
        }


def search(
    ranked: Sequence[LayerLoss],
    attempt: Callable[[tuple[str, ...]], Any],
    passed: Callable[[Any], bool],
    summary: Callable[[Any], dict[str, Any]],
    *,
    forced: tuple[str, ...] = (),
    max_rounds: int = MAX_ROUNDS,
    max_share: float = MAX_SHARE,
) -> tuple[Any, Selection]:
    """Keep the worst 1, 2, 4 ... activations' layers in float (with `forced`), converting and
    validating each time (`attempt(layers) -> outcome`), until `passed(outcome)` or the limits.
    Returns the last outcome and the record; the caller keeps the outcome only if it passed."""
    limit = min(len(ranked), max(MIN_CULPRITS, math.ceil(max_share * len(ranked))))
    selection = Selection(forced=forced)
    outcome = None
    count = 1
    for _ in range(max_rounds):
        take = list(ranked[: min(count, limit)])
        if not take or (selection.rounds and take == selection.culprits):
            break
        selection.culprits = take
        outcome = attempt(selection.layers)
        selection.rounds.append({"culprits": len(take), "layers": len(selection.layers), **summary(outcome)})
        if passed(outcome) or count >= limit:
            break
        count *= 2
    if outcome is not None and not passed(outcome):
        selection.note = (
            f"still misses its bar with {len(selection.layers)} layers in float (the limit: "
            f"{max_rounds} rounds, {max_share:.0%} of the {len(ranked)} quantized activations or "
            f"{MIN_CULPRITS})"
        )
    return outcome, selection


def applies(options: Any) -> bool:
    """Quantized modes of a format that has a per-layer comparison."""
    from edgekit.export.base import Quantization

    return options.quantization in (Quantization.INT8, Quantization.DYNAMIC) and options.format in COMPARISONS


Trial = tuple[bytes, dict[str, Any]]  # (file bytes, parity report)


def keep_failing_layers_float(
    model: Any,
    card: Any,
    options: Any,
    inputs: np.ndarray | None,
    trial: Callable[[Any], Trial],
    first: Trial,
) -> Trial:
    """The export hook: given the first try (`first`, converted with `options`), and a failed bar,
    rank the layers by what quantizing them lost on `inputs` and retry (`trial(options)`) with the
    worst in float. The result carries `float_layers` in its report: which stayed float and why."""
    raw, report = first
    if report["passed"] or not options.selective or not applies(options):
        if options.float_layers:
            forced = Selection(forced=tuple(options.float_layers), how="--float-layers")
            report["float_layers"] = forced.to_dict()
        return first
    comparison = COMPARISONS.get(options.format)
    selection = Selection(forced=tuple(options.float_layers), how=comparison.how)
    if inputs is None or not len(inputs):
        selection.note = "no calibration samples to compare layers on"
        report["float_layers"] = selection.to_dict()
        return first
    from edgekit.errors import UnsupportedError

    try:
        losses, _ = comparison.compare(model, card, options, inputs)
    except UnsupportedError as e:
        selection.note = f"layers not compared: {e}"
        report["float_layers"] = selection.to_dict()
        return first
    ranked = [item for item in rank(losses) if not set(item.keep) <= set(selection.forced)]
    before = _summary(first)

    def attempt(layers: tuple[str, ...]) -> Trial:
        import dataclasses

        return trial(dataclasses.replace(options, float_layers=layers))

    outcome, selection = search(
        ranked, attempt, lambda t: t[1]["passed"], _summary, forced=selection.forced
    )
    selection.how = comparison.how
    chosen = outcome if outcome is not None and outcome[1]["passed"] else first
    record = selection.to_dict()
    record["without"] = before
    record["ranked"] = [item.to_dict() for item in ranked[:10]]
    if chosen is first:
        record["layers"] = list(selection.forced)  # the file written is the first one
    chosen[1]["float_layers"] = record
    return chosen


def _summary(t: Trial) -> dict[str, Any]:
    report = t[1]
    metric = report.get("metric")
    out: dict[str, Any] = {"passed": report["passed"], "max_abs_diff": report["max_abs_diff"]}
    if metric:
        out[metric] = report[metric]
        out[f"{metric}_delta_points"] = report[f"{metric}_delta_points"]
    return out
