"""Which file to deploy where: per host of a merged comparison, the fastest file x backend x threads
that meets its accuracy bar and the smallest one that does, each with the uncertainty of its figure,
a Mann-Whitney test where the runner-up is close, and the hosts whose best choice differs.

It reads the rows only (`BenchRow`, as result files hold them), and judges the bar as the single-host
verdict does (`meets_bar`: within the card's allowed drop of the best of the file's family, among
the rows of that host)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.benchmark.compare import Comparison
from edgekit.benchmark.results import BenchRow
from edgekit.benchmark.verdict import meets_bar
from edgekit.runtime.timing import SIGNIFICANCE, mann_whitney

CLOSE = 0.10  # a runner-up within 10% of the fastest is tested before one is called faster


@dataclass(frozen=True)
class Figure:
    """One row's time per item with the 95% interval of its median."""

    row: BenchRow

    @property
    def per_item(self) -> float:
        return self.row.p50_ms / max(1, self.row.batch)

    def text(self) -> str:
        r, b = self.row, max(1, self.row.batch)
        if r.ci_high_ms > 0:
            return f"{self.per_item:.4g} ms (95% CI {r.ci_low_ms / b:.4g}-{r.ci_high_ms / b:.4g})"
        return f"{self.per_item:.4g} ms ({r.runs} runs, too few for an interval)"


@dataclass(frozen=True)
class HostAdvice:
    host: str
    fastest: BenchRow | None
    close: tuple[tuple[BenchRow, float | None], ...]  # the others meeting the bar within CLOSE, with p
    smallest: BenchRow | None
    bar_known: bool  # whether the accuracy of the chosen rows was measured on this host
    reason: str | None = None  # why there is no advice (nothing measured)

    @property
    def runner_up(self) -> BenchRow | None:
        return self.close[0][0] if self.close else None

    @property
    def p_runner_up(self) -> float | None:
        return self.close[0][1] if self.close else None

    def equivalent(self) -> list[BenchRow]:
        """The fastest and every close row the Mann-Whitney test does not tell from it at 5%."""
        if self.fastest is None:
            return []
        return [self.fastest] + [r for r, p in self.close if p is not None and p >= SIGNIFICANCE]


def choice(r: BenchRow) -> str:
    """`model_int8.tflite on litert/cpu, 4 threads`: what a deployment would set."""
    text = f"{Path(r.model).name} on {r.backend}/{r.device}"
    if r.threads is not None:
        text += f", {r.threads} thread{'s' if r.threads != 1 else ''}"
    if r.batch != 1:
        text += f", batch {r.batch}"
    return text


def _key(r: BenchRow) -> tuple:
    return (Path(r.model).name, r.backend, r.device, r.threads, r.batch)


def for_host(host: str, rows: list[BenchRow]) -> HostAdvice:
    ok = [r for r in rows if r.error is None and r.p50_ms > 0]
    if not ok:
        return HostAdvice(host, None, (), None, False, reason="nothing measured")
    good = [r for r in ok if meets_bar(r, ok) is not False]
    pool = good or ok
    ranked = sorted(pool, key=lambda r: Figure(r).per_item)
    fastest = ranked[0]
    close = []
    for r in ranked[1:]:
        if Figure(r).per_item > Figure(fastest).per_item * (1 + CLOSE):
            break
        a, b = fastest.extra.get("samples_ms") or [], r.extra.get("samples_ms") or []
        p = mann_whitney(a, b)[1] if a and b and fastest.batch == r.batch else None
        close.append((r, p))
    smallest = min(pool, key=lambda r: (r.size_bytes, Figure(r).per_item))
    return HostAdvice(host, fastest, tuple(close), smallest, fastest.metric_value is not None)


def advise(c: Comparison) -> list[HostAdvice]:
    return [for_host(h, [r for k in c.keys if (r := c.cells.get((h, k))) is not None]) for h in c.hosts]


def _bar(a: HostAdvice) -> str:
    return "meets its accuracy bar" if a.bar_known else "accuracy not measured there"


def _p(p: float | None) -> str:
    return "?" if p is None else ("<0.001" if p < 0.001 else f"{p:.3f}")


def _close_text(r: BenchRow, p: float | None) -> str:
    verdict = (
        "slower (told apart at 5%)"
        if p is not None and p < SIGNIFICANCE
        else "not told apart: either will do"
    )
    return f"{choice(r)}, {Figure(r).text()}: Mann-Whitney p {_p(p)}, {verdict}"


def _runner_text(a: HostAdvice) -> str:
    return _close_text(*a.close[0]) if a.close else ""


def differs(advice: list[HostAdvice]) -> str | None:
    """One line: a choice every host can take (the fastest, or one its test does not tell from the
    fastest), else each host's own."""
    chosen = [a for a in advice if a.fastest is not None]
    if len(chosen) < 2:
        return None
    common = set.intersection(*({_key(r) for r in a.equivalent()} for a in chosen))
    if common:
        pick = next(r for r in chosen[0].equivalent() if _key(r) in common)
        return f"every host: use {choice(pick)}"
    return "the choice differs between hosts: " + "; ".join(
        f"{a.host}: use {choice(a.fastest)}"  # type: ignore[arg-type]
        for a in chosen
    )


def lines(advice: list[HostAdvice]) -> list[str]:
    out = ["which file to deploy where (p50 per item, with the 95% interval of the median):"]
    for a in advice:
        if a.fastest is None:
            out.append(f"  {a.host}: {a.reason}")
            continue
        out.append(f"  {a.host}: fastest: {choice(a.fastest)}, {Figure(a.fastest).text()}, {_bar(a)}")
        for r, p in a.close[:3]:
            out.append(f"  {' ' * len(a.host)}  close: {_close_text(r, p)}")
        if a.smallest is not None:
            s = a.smallest
            out.append(
                f"  {' ' * len(a.host)}  smallest: {Path(s.model).name} ({s.size_bytes / 1024:.1f} KB), "
                f"{choice(s).split(' on ', 1)[1]}, {Figure(s).text()}"
            )
    summary = differs(advice)
    if summary:
        out.append(f"  {summary}")
    return out


def markdown(advice: list[HostAdvice]) -> str:
    head = "| host | use (fastest meeting its accuracy bar) | p50 ms per item (95% CI) | close runner-up | smallest |"
    out = [head, "|---|---|---|---|---|"]
    for a in advice:
        if a.fastest is None:
            out.append(f"| {a.host} | {a.reason} | | | |")
            continue
        bar = "" if a.bar_known else " (accuracy not measured)"
        small = a.smallest
        small_text = f"{Path(small.model).name} ({small.size_bytes / 1024:.1f} KB)" if small else ""
        cells = [a.host, f"`{choice(a.fastest)}`{bar}", Figure(a.fastest).text(), _runner_text(a), small_text]
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    summary = differs(advice)
    return "\n".join(out) + (f"\n\n{summary[0].upper()}{summary[1:]}." if summary else "")


def to_json(advice: list[HostAdvice]) -> list[dict[str, Any]]:
    def row(r: BenchRow | None) -> dict[str, Any] | None:
        if r is None:
            return None
        return {"row": r.name, "choice": choice(r), "p50_ms_per_item": Figure(r).per_item,
                "ci_ms": [r.ci_low_ms / max(1, r.batch), r.ci_high_ms / max(1, r.batch)],
                "size_bytes": r.size_bytes}  # fmt: skip

    return [
        {
            "host": a.host,
            "fastest": row(a.fastest),
            "close": [{**(row(r) or {}), "mann_whitney_p": p} for r, p in a.close],
            "smallest": row(a.smallest),
            "accuracy_measured": a.bar_known,
            "reason": a.reason,
        }
        for a in advice
    ]
