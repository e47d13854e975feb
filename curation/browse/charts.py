"""Charts for the report as inline SVG strings: no script, no library, no network.

Every label passes through html.escape (reject reasons and stage names come from the run).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import numpy as np

KEPT = "#3a9d5d"
REJECT_COLOURS = ["#d9534f", "#f0ad4e", "#8e6cbf", "#5bc0de", "#c7679a", "#9c7a4d", "#777777"]
BAR = "#4a7fbf"


def _t(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _num(n: float) -> str:
    if abs(n) >= 1e6:
        return f"{n / 1e6:.1f}M"
    if abs(n) >= 1e4:
        return f"{n / 1e3:.0f}k"
    return f"{n:g}" if isinstance(n, float) else str(n)


def funnel_svg(stages: Sequence[dict[str, Any]], width: int = 860) -> str:
    """One bar per stage: its output rows, kept in green, rejects by reason after it."""
    label_w, row_h, pad = 150, 30, 8
    bar_w = width - label_w - 260
    top = max([1, *(max(s["rows_out"], s["rows_in"]) for s in stages)])
    reasons = sorted({r for s in stages for r in s["rejected"]})
    colour = {r: REJECT_COLOURS[i % len(REJECT_COLOURS)] for i, r in enumerate(reasons)}
    height = pad * 2 + row_h * len(stages) + 26
    out = [f'<svg class="chart funnel" viewBox="0 0 {width} {height}" width="{width}" '
           f'height="{height}" role="img" aria-label="funnel: rows per stage">']  # fmt: skip
    for k, s in enumerate(stages):
        y = pad + k * row_h
        out.append(
            f'<text x="{label_w - 8}" y="{y + 19}" text-anchor="end">{_t(s["stage"])}</text>'
        )
        x = float(label_w)
        segments = [("kept", s["kept"], KEPT)] + [
            (r, n, colour[r]) for r, n in s["rejected"].items()
        ]
        for name, n, fill in segments:
            w = bar_w * n / top
            if w <= 0:
                continue
            out.append(f'<rect x="{x:.2f}" y="{y + 5}" width="{max(w, 1):.2f}" height="{row_h - 10}" '
                       f'fill="{fill}"><title>{_t(s["stage"])}: {_t(name)} {n}</title></rect>')  # fmt: skip
            x += w
        note = f"in {_num(s['rows_in'])} · out {_num(s['rows_out'])} · kept {_num(s['kept'])}"
        if s["status"] != "done":
            note += f" ({s['status']})"
        out.append(f'<text x="{x + 6:.2f}" y="{y + 19}" class="note">{_t(note)}</text>')
    y = pad + len(stages) * row_h + 14
    x = float(label_w)
    for name, fill in [("kept", KEPT), *colour.items()]:
        out.append(f'<rect x="{x:.1f}" y="{y - 9}" width="10" height="10" fill="{fill}"/>')
        out.append(f'<text x="{x + 14:.1f}" y="{y}" class="note">{_t(name)}</text>')
        x += 24 + 7 * len(name)
    out.append("</svg>")
    return "".join(out)


def _edges(
    values: np.ndarray, bins: int, integer: bool, bounds: tuple[float, float] | None
) -> np.ndarray:
    lo, hi = bounds if bounds is not None else (float(values.min()), float(values.max()))
    if integer and hi - lo + 1 <= bins:  # one bar per integer value
        return np.arange(lo - 0.5, hi + 1.5)
    if hi == lo:
        return np.array([lo - 0.5, hi + 0.5])
    return np.linspace(lo, hi, bins + 1)


def histogram_svg(
    values: Sequence[float] | np.ndarray,
    title: str,
    unit: str = "",
    bins: int = 20,
    integer: bool = False,
    marker: float | None = None,
    marker_label: str = "",
    bounds: tuple[float, float] | None = None,
    width: int = 380,
    height: int = 210,
) -> str:
    """A histogram with its count, range and mean; an optional marker line (a threshold).
    `bounds` fixes the axis for scores with a known range (similarity, agreement: 0 to 1)."""
    arr = np.asarray([v for v in values if v is not None], dtype=float)
    arr = arr[np.isfinite(arr)]
    if bounds is not None:
        arr = np.clip(arr, *bounds)
    head = f'<figure class="hist"><figcaption>{_t(title)}'
    if not arr.size:
        return f'{head}</figcaption><p class="empty">no values in this run</p></figure>'
    edges = _edges(arr, bins, integer, bounds)
    counts, _ = np.histogram(arr, bins=edges)
    left, right, bottom, top_pad = 40, 10, 34, 10
    plot_w, plot_h = width - left - right, height - bottom - top_pad
    peak = max(1, int(counts.max()))
    span = edges[-1] - edges[0]

    def sx(v: float) -> float:
        return left + plot_w * (v - edges[0]) / span

    unit_s = f" {unit}" if unit else ""
    stats = f" · n={arr.size} · mean {arr.mean():.3g}{unit_s}"
    out = [f'{head}<span class="note">{_t(stats)}</span></figcaption>',
           f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
           f'role="img" aria-label="{_t(title)}">']  # fmt: skip
    for c, a, b in zip(counts, edges[:-1], edges[1:], strict=True):
        h = plot_h * c / peak
        out.append(f'<rect x="{sx(a) + 0.5:.2f}" y="{top_pad + plot_h - h:.2f}" '
                   f'width="{max(sx(b) - sx(a) - 1, 0.5):.2f}" height="{h:.2f}" fill="{BAR}">'
                   f"<title>{a:.4g}–{b:.4g}{_t(unit_s)}: {int(c)}</title></rect>")  # fmt: skip
    base = top_pad + plot_h
    out.append(f'<line x1="{left}" y1="{base}" x2="{left + plot_w}" y2="{base}" class="axis"/>')
    out.append(
        f'<text x="{left - 4}" y="{top_pad + 8}" text-anchor="end" class="note">{peak}</text>'
    )
    out.append(f'<text x="{left - 4}" y="{base}" text-anchor="end" class="note">0</text>')
    lo, hi = (
        (edges[0] + 0.5, edges[-1] - 0.5) if integer and len(edges) > 2 else (edges[0], edges[-1])
    )
    out.append(f'<text x="{left}" y="{base + 16}" class="note">{_t(_num(round(lo, 3)))}</text>')
    out.append(f'<text x="{left + plot_w}" y="{base + 16}" text-anchor="end" class="note">'
               f"{_t(_num(round(hi, 3)))}{_t(unit_s)}</text>")  # fmt: skip
    if marker is not None and edges[0] <= marker <= edges[-1]:
        x = sx(marker)
        out.append(f'<line x1="{x:.2f}" y1="{top_pad}" x2="{x:.2f}" y2="{base}" class="marker"/>')
        out.append(
            f'<text x="{x + 3:.2f}" y="{top_pad + 10}" class="note">{_t(marker_label)}</text>'
        )
    out.append("</svg></figure>")
    return "".join(out)
