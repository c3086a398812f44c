"""Pictures drawn server-side as SVG: a run's timeline, a workflow's duration percentiles.

Every text in them comes from user data (step names, hook names), so each is escaped here:
the result is ``Markup`` that a template inserts as is. No script runs in them; a bar's
``<title>`` is its tooltip.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

from pyworkflow.inspect import Mark, Span, format_duration

__all__ = ["MAX_BARS", "duration_chart", "timeline_svg"]

MAX_BARS = 300
"""Bars a timeline draws; a run with more says how many are left out."""

_WIDTH, _LABEL, _ROW, _TOP = 960, 220, 18, 28
_COLOURS = {
    "completed": "#2e9d5b",
    "received": "#2e9d5b",
    "retried": "#e0a030",
    "failed": "#d2433b",
    "expired": "#d2433b",
    "cancelled": "#8a8f98",
    "interrupted": "#8e44ad",
    "running": "#3b7dd8",
    "waiting": "#9ec5f0",
}
_KIND_FILL = {"sleep": "#c9d6e8", "hook": "#f3d28b", "child": "#b9e0c6"}


def _x(at: float, start: float, span: float) -> float:
    return _LABEL + (at - start) / span * (_WIDTH - _LABEL - 10)


def timeline_svg(
    bars: Sequence[Span], marks: Sequence[Mark], *, start: float, end: float
) -> Markup:
    """The run's spans as bars on a time axis from ``start`` to ``end`` (open bars reach it).

    Step attempts are coloured by outcome (retried amber, failed red, interrupted purple);
    sleeps, hook waits and child runs have their own fill, edged by how they ended. Marks
    (take-overs, resumes, cancel requests, the end) are dashed vertical lines.
    """
    shown = list(bars[:MAX_BARS])
    total = max(end - start, 1e-3)
    height = _TOP + _ROW * max(len(shown), 1) + 34
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{_WIDTH}" '
        f'height="{height}" viewBox="0 0 {_WIDTH} {height}" role="img" '
        'aria-label="run timeline">'
    ]
    for i in range(5):
        at = start + total * i / 4
        x = _x(at, start, total)
        out.append(
            f'<line x1="{x:.1f}" y1="{_TOP - 6}" x2="{x:.1f}" y2="{height - 30}" '
            'stroke="#e3e6ea"/>'
            f'<text x="{x:.1f}" y="{_TOP - 10}" font-size="10" '
            f'text-anchor="{"end" if i == 4 else "middle"}" '
            f'fill="#667">+{escape(format_duration(at - start))}</text>'
        )
    for row, bar in enumerate(shown):
        y = _TOP + row * _ROW
        x1 = _x(bar.start, start, total)
        x2 = max(_x(bar.end if bar.end is not None else end, start, total), x1 + 2)
        edge = _COLOURS.get(bar.outcome, "#555")
        fill = edge if bar.kind == "step" else _KIND_FILL.get(bar.kind, "#ddd")
        took = format_duration((bar.end if bar.end is not None else end) - bar.start)
        tip = f"{bar.kind} {bar.label}: {bar.outcome}, {took}"
        if bar.child_run_id:
            tip += f" (run {bar.child_run_id})"
        out.append(
            f'<g class="bar bar-{escape(bar.kind)} outcome-{escape(bar.outcome)}">'
            f"<title>{escape(tip)}</title>"
            f'<text x="4" y="{y + 12}" font-size="11" fill="#223">'
            f"{escape(_cut(bar.kind + ' ' + bar.label))}</text>"
            f'<rect x="{x1:.1f}" y="{y + 2}" width="{x2 - x1:.1f}" height="{_ROW - 5}" '
            f'rx="2" fill="{fill}" stroke="{edge}" stroke-width="1.5"/></g>'
        )
    for i, mark in enumerate(marks):
        x = _x(mark.at, start, total)
        # Marks close together (a failure, then its resume) take turns on two text rows, and
        # a label near the right edge ends at its line instead of running off the picture.
        y = height - 8 - (i % 2) * 11
        anchor, dx = ("end", -2) if x > _WIDTH - 140 else ("start", 2)
        out.append(
            f'<g class="mark"><title>{escape(mark.label)} (event {mark.seq})</title>'
            f'<line x1="{x:.1f}" y1="{_TOP - 4}" x2="{x:.1f}" y2="{height - 30}" '
            'stroke="#444" stroke-dasharray="3,3"/>'
            f'<text x="{x + dx:.1f}" y="{y}" font-size="10" fill="#444" '
            f'text-anchor="{anchor}">{escape(mark.label)}</text></g>'
        )
    if len(bars) > MAX_BARS:
        out.append(
            f'<text x="4" y="{height - 8}" font-size="11" fill="#a33">'
            f"first {MAX_BARS} of {len(bars)} spans drawn</text>"
        )
    out.append("</svg>")
    return Markup("".join(out))


def _cut(text: str, limit: int = 34) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def duration_chart(p50: float | None, p95: float | None, p99: float | None) -> Markup:
    """Three bars, p50/p95/p99, scaled to p99; empty when there is no completed run."""
    values = [("p50", p50), ("p95", p95), ("p99", p99)]
    top = max((v for _, v in values if v is not None), default=None)
    if not top:
        return Markup('<span class="muted">no completed runs</span>')
    out = ['<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="220" height="54">']
    for i, (name, value) in enumerate(values):
        y = 4 + i * 17
        width = 0.0 if value is None else value / top * 120
        label = "-" if value is None else format_duration(value)
        out.append(
            f'<text x="0" y="{y + 11}" font-size="11" fill="#334">{name}</text>'
            f'<rect x="30" y="{y + 2}" width="{width:.1f}" height="11" fill="#3b7dd8"/>'
            f'<text x="{36 + width:.1f}" y="{y + 11}" font-size="11" fill="#334">'
            f"{escape(label)}</text>"
        )
    out.append("</svg>")
    return Markup("".join(out))
