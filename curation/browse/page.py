"""The report page: one self-contained HTML file.

Two rules keep untrusted strings (file names, captions, model output) inert:
- everything written into the HTML goes through html.escape;
- the gallery's JSON sits in a <script type="application/json"> with `<`, `>` and `&` written
  as \\u003c, \\u003e, \\u0026, so no string in it can close the element (`</script>`) or open
  a comment; the script reads it with JSON.parse and puts strings into the page as text.
A Content-Security-Policy then allows exactly the page's own script (by its hash), so even a
string that got through as markup could not run code.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from typing import Any

from curation.browse.assets import CSS, JS
from curation.browse.text import printable


def script_json(data: Any) -> str:
    """JSON that is safe inside a <script> element."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                    ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):  # fmt: skip
        text = text.replace(ch, esc)
    return text


def _t(value: Any) -> str:
    return html.escape(printable(value, keep_newlines=True), quote=True)


def _n(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def funnel_table(summary: dict[str, Any]) -> str:
    head = ("<tr><th>stage</th><th>folder</th><th>status</th><th class=num>shards</th>"
            "<th class=num>in</th><th class=num>out</th><th class=num>kept</th><th>rejected</th></tr>")  # fmt: skip
    rows = []
    for s in summary["stages"]:
        reasons = ", ".join(f"{_t(r)}={n}" for r, n in s["rejected"].items()) or "-"
        waiting = f" ({s['waiting']} waiting)" if s["waiting"] else ""
        rows.append(
            f"<tr><td>{_t(s['stage'])}</td><td><code>{_t(s['folder'])}</code></td>"
            f"<td>{_t(s['status'])}{waiting}</td><td class=num>{s['shards_done']}</td>"
            f"<td class=num>{s['rows_in']}</td><td class=num>{s['rows_out']}</td>"
            f"<td class=num>{s['kept']}</td><td>{reasons}</td></tr>"
        )
    for branch, n in summary["instructions"].items():
        rows.append(f"<tr><td>instructions</td><td><code>instructions/{_t(branch)}</code></td>"
                    f"<td colspan=6>{n['pairs']} pairs on {n['clips']} clips</td></tr>")  # fmt: skip
    return f"<table>{head}{''.join(rows)}</table>"


def sources_table(sources: list[dict[str, Any]], total: int) -> str:
    if not sources:
        return "<p class=muted>no probed sources yet</p>"
    rows = []
    for s in sources:
        name = _t(s["path"])
        cell = (
            f'<a href="{html.escape(s["href"], quote=True)}">{name}</a>' if s.get("href") else name
        )
        verdict = "kept" if s["kept"] else f"rejected: {_t(s['reject_reason'])}"
        rows.append(f"<tr><td class=mono>{cell}</td><td class=num>{_n(s['display_width'])}×"
                    f"{_n(s['display_height'])}</td><td class=num>{_n(s['duration_s'])} s</td>"
                    f"<td>{verdict}</td></tr>")  # fmt: skip
    more = (
        f"<p class=muted>{total - len(sources)} more not shown</p>" if total > len(sources) else ""
    )
    head = (
        "<tr><th>file</th><th class=num>size</th><th class=num>duration</th><th>verdict</th></tr>"
    )
    return f"<table>{head}{''.join(rows)}</table>{more}"


def evaluation_tables(evaluations: list[dict[str, Any]]) -> str:
    """Each evaluated checkpoint's scores beside the paper's (`make eval`'s summary.json)."""
    if not evaluations:
        return '<p class="muted">No evaluation yet: <code>make eval CHECKPOINT=...</code>.</p>'
    parts = []
    for ev in evaluations:
        rows = "".join(
            f"<tr><td>{_t(task)}</td><td>{_t(metric)}</td><td>{_n(value, 4)}</td>"
            f"<td>{_n(row.get('paper', {}).get(metric), 4)}</td><td>{_t(row.get('samples'))}</td>"
            f"<td>{_t(row.get('skipped'))}</td><td>{_t(row.get('unreadable'))}</td></tr>"
            for task, row in ev.get("tasks", {}).items()
            for metric, value in row.get("metrics", {}).items()
        )
        parts.append(
            f"<h3><code>{_t(ev.get('checkpoint'))}</code></h3>"
            f'<p class="muted">data: <span class="mono">{_t(ev.get("data"))}</span>, '
            f"{_t(ev.get('samples_per_s'))} samples/s</p>"
            "<table><tr><th>task</th><th>metric</th><th>this model</th><th>HumanOmni (paper)</th>"
            f"<th>samples</th><th>skipped</th><th>unreadable</th></tr>{rows}</table>"
        )
    return "".join(parts)


def annotation_table(annotation: dict[str, Any] | None) -> str:
    """People's labels (make annotate-pull): agreement, and the pipeline measured against them."""
    figures = (annotation or {}).get("agreement")
    if not figures:
        return '<p class="muted">No human labels yet: <code>make annotate</code>, then <code>make annotate-pull</code>.</p>'
    rows = "".join(
        f"<tr><td>{_t(k.replace('_', ' '))}</td><td>{_n(v, 3)}</td></tr>"
        for k, v in figures.items()
    )
    return f"<table><tr><th>measure</th><th>value</th></tr>{rows}</table>"


def render_page(
    *,
    run: str,
    run_path: str,
    notice: str | None,
    generated: str,
    summary: dict[str, Any],
    funnel_chart: str,
    histograms: list[str],
    sources: list[dict[str, Any]],
    sources_total: int,
    data: dict[str, Any],
    evaluations: list[dict[str, Any]] | None = None,
    annotation: dict[str, Any] | None = None,
) -> str:
    digest = base64.b64encode(hashlib.sha256(JS.encode()).digest()).decode()
    # file: and 'self' both: Chrome treats file:// pages as opaque origins for 'self'.
    csp = (f"default-src 'none'; img-src 'self' file: data:; media-src 'self' file:; "
           f"style-src 'unsafe-inline'; script-src 'sha256-{digest}'")  # fmt: skip
    banner = f'<p class="notice">{_t(notice)}</p>' if notice else ""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{_t(run)}: curation report</title>
<style>{CSS}</style>
</head>
<body>
<header>
<h1>Run <code>{_t(run)}</code></h1>
<p class="muted"><span class="mono">{_t(run_path)}</span> · report made {_t(generated)} from the
finished shards at that time</p>
{banner}
<p><a href="#funnel">Funnel</a> · <a href="#distributions">Distributions</a> ·
<a href="#sources">Sources</a> · <a href="#gallery">Clips</a> ·
<a href="#annotation">Human labels</a> · <a href="#evaluation">Evaluation</a></p>
</header>
<section id="funnel"><h2>Funnel</h2>
{funnel_chart}
{funnel_table(summary)}
</section>
<section id="distributions"><h2>Distributions</h2>
<div class="hists">{"".join(histograms)}</div>
</section>
<section id="sources"><h2>Sources</h2>
{sources_table(sources, sources_total)}
</section>
<section id="gallery"><h2>Clips</h2>
<div class="controls">
<button id="prev" type="button">‹ previous</button>
<button id="next" type="button">next ›</button>
<label>show <select id="filter">
<option value="all">all clips</option><option value="kept">kept</option>
<option value="rejected">rejected</option><option value="faces">with faces</option>
<option value="speech">with speech</option>
</select></label>
<span id="page-info" class="muted"></span>
<span class="legend muted"><span><i class="sw" style="border-color:#ff9f1c"></i>face</span>
<span><i class="sw" style="border-color:#2ec4f1"></i>person</span></span>
</div>
<noscript><p>The gallery needs JavaScript.</p></noscript>
<div id="cards"></div>
</section>
<section id="annotation"><h2>Human labels</h2>
{annotation_table(annotation)}
</section>
<section id="evaluation"><h2>Evaluation</h2>
{evaluation_tables(evaluations or [])}
</section>
<script type="application/json" id="report-data">{script_json(data)}</script>
<script>{JS}</script>
</body>
</html>
"""
