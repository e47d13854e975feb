"""`make report`: a static HTML report of a run under `<run>/report/index.html`.

It opens from file:// with no server and no network: charts are inline SVG made here, the
gallery is drawn by one small inline script from JSON embedded in the page, thumbnails sit in
`report/thumbs/` and clip files are linked by relative paths. Only finished shards are read,
so a report of a run still going shows what is done so far; re-running it reuses thumbnails.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from curation.browse.charts import funnel_svg, histogram_svg
from curation.browse.db import RunDB, ident, sql_str
from curation.browse.layout import RunLayout, open_layout
from curation.browse.page import render_page
from curation.browse.summary import funnel
from curation.browse.text import json_safe, printable
from curation.browse.thumbs import make_thumbs
from curation.rundir import atomic_write_bytes
from curation.storage import Storage, is_uri

SOURCES_SHOWN = 300  # rows of the sources table; the funnel counts them all


@dataclass(frozen=True)
class ReportResult:
    index: str  # where the page is: a path, or a URI in the run's object store
    clips: int  # in the gallery
    total_clips: int
    thumbs: dict[str, int]


def href(target: str | None, layout: RunLayout) -> str | None:
    """A relative, percent-encoded link from the report (`<run>/report/`) to a file: any
    local file for a run in a folder, a file of the run itself for a run in an object store
    (the report then opens where the bucket is served or copied); None otherwise."""
    if not target:
        return None
    if layout.storage.is_local:
        if is_uri(target):
            return None
        rel = os.path.relpath(Path(target).absolute(), layout.storage.local_path("report"))
        return quote(rel.replace(os.sep, "/"), safe="/")
    prefix = layout.path.rstrip("/") + "/"
    return quote("../" + target[len(prefix) :], safe="/") if target.startswith(prefix) else None


def _values(db: RunDB, view: str, expr: str) -> np.ndarray:
    if not db.has(view):
        return np.zeros(0)
    got = db.con.execute(
        f"SELECT {expr} AS v FROM {ident(view)} WHERE {expr} IS NOT NULL"
    ).fetchnumpy()
    return np.asarray(got["v"], dtype=float)


def _setting(state: dict[str, Any], section: str, name: str) -> float | None:
    value = ((state.get("config") or {}).get(section) or {}).get(name)
    return float(value) if isinstance(value, int | float) else None


def distributions(db: RunDB) -> list[str]:
    state = db.layout.state
    return [
        histogram_svg(_values(db, "scenes", "duration_s"), "Clip durations (every clip found)", "s"),
        histogram_svg(_values(db, "sources", "least(display_width, display_height)"),
                      "Source resolutions (short side)", "px",
                      marker=_setting(state, "probe", "min_short_side"), marker_label="minimum"),
        histogram_svg(_values(db, "scenes", "keyframes"), "Keyframes per clip", integer=True),
        histogram_svg(_values(db, "signals", "speech_s"), "Speech per clip", "s"),
        histogram_svg(_values(db, "signals", "lip_sync"), "Lip sync (clips with a face and speech)",
                      marker=_setting(state, "instructions", "speech_min_lip_sync"),
                      marker_label="speech pairs", bounds=(0.0, 1.0)),
        histogram_svg(_values(db, "dedup", "similarity"), "Dedup similarity (duplicates)",
                      marker=_setting(state, "dedup", "threshold"), marker_label="threshold",
                      bounds=(0.0, 1.0)),
        histogram_svg(_values(db, "consensus", "agreement"), "Consensus agreement",
                      marker=_setting(state, "consensus", "min_agreement"), marker_label="minimum",
                      bounds=(0.0, 1.0)),
    ]  # fmt: skip


def gallery_rows(db: RunDB, max_clips: int) -> list[dict[str, Any]]:
    """Clips for the gallery: those that got furthest first (kept ones ahead), then by id."""
    if not db.clip_folders:
        return []
    order = [f.stage for f in db.clip_folders]
    rank = (
        "CASE stage "
        + " ".join(f"WHEN {sql_str(s)} THEN {i}" for i, s in enumerate(order))
        + " END"
    )
    return db.records(
        f"SELECT * FROM per_clip ORDER BY kept DESC, {rank} DESC, clip_id LIMIT {int(max_clips)}"
    )


# Keypoint pairs drawn as a skeleton, per layout (stages/signals.py: pose_layout).
SKELETONS = {
    "blazepose33": [(11, 12), (11, 13), (13, 15), (12, 14), (14, 16), (11, 23), (12, 24),
                    (23, 24), (23, 25), (25, 27), (24, 26), (26, 28)],
    "coco17": [(5, 6), (5, 7), (7, 9), (6, 8), (8, 10), (5, 11), (6, 12), (11, 12), (11, 13),
               (13, 15), (12, 14), (14, 16)],
}  # fmt: skip
SHOWN_VISIBILITY = 0.5  # keypoints drawn on the thumbnails


def signal_card(c: dict[str, Any]) -> dict[str, Any]:
    """The signals of one clip for the gallery (empty when the clip has no signals row)."""
    if c.get("speech_s") is None and c.get("framing") is None:
        return {}
    poses = [[k["t_s"], [[round(p["x"], 4), round(p["y"], 4)] if p["visibility"] >= SHOWN_VISIBILITY
                         else None for p in k["points"] or []]]
             for k in c.get("keypoints") or [] if k["points"]]  # fmt: skip
    return {
        "speech_s": c.get("speech_s"), "segments": c.get("speech_segments") or [],
        "transcript": _text(c.get("transcript")), "lip_sync": c.get("lip_sync"),
        "offset": c.get("lip_sync_offset_s"), "framing": c.get("framing"),
        "pose_visible": c.get("pose_visible"), "poses": poses,
        "skeleton": SKELETONS.get(c.get("pose_layout") or "", []),
        # The events stage's timed events: [type, start s, end s, confidence, person].
        "events": [[_text(e["type"]), e["start_s"], e["end_s"], e["confidence"], e["person"]]
                   for e in c.get("events") or []],
    }  # fmt: skip


def _text(value: Any) -> str | None:
    return None if value is None else printable(value, keep_newlines=True)


def clip_card(c: dict[str, Any], thumbs: list[dict[str, Any]], pairs: dict[str, list[dict[str, Any]]],
              layout: RunLayout) -> dict[str, Any]:  # fmt: skip
    """What the gallery script shows of one clip; every string is data, never markup."""
    boxes = [[b["frame"], b["cls"], b["nx1"], b["ny1"], b["nx2"], b["ny2"], b["score"]]
             for b in c.get("boxes") or []]  # fmt: skip
    fields = []
    for group, values in (c.get("fields") or {}).items():
        for name, value in (values or {}).items():
            if value:
                fields.append([f"{group}.{name}", _text(value)])
    source_link = href(c.get("path"), layout)
    if source_link and not c.get("clip_path") and c.get("start_s") is not None:
        source_link += f"#t={c['start_s']:.3f},{c['end_s']:.3f}"  # media fragment: the range
    return {
        "id": c["clip_id"], "stage": c["stage"], "kept": bool(c["kept"]),
        "reason": c.get("reject_reason"), "detail": _text(c.get("reject_detail")),
        "source": _text(Path(str(c.get("path") or "")).name), "path": _text(c.get("path")),
        "start": c.get("start_s"), "end": c.get("end_s"), "duration": c.get("duration_s"),
        "size": [c.get("display_width"), c.get("display_height")], "fps": c.get("fps"),
        "keyframes": c.get("keyframes"), "faces": c.get("frames_with_face"),
        "persons": c.get("frames_with_person"), "sampled": c.get("frames_sampled"),
        "clip_href": href(c.get("clip_path"), layout), "source_href": source_link,
        "thumbs": thumbs, "boxes": boxes,
        "brief": _text(c.get("brief_caption")),
        "candidates": [{"model": _text(x.get("model")), "text": _text(x.get("text")),
                        "error": _text(x.get("error"))} for x in c.get("candidates") or []],
        "consensus": _text(c.get("consensus")), "agreement": c.get("agreement"),
        "duplicate_of": c.get("duplicate_of"), "similarity": c.get("similarity"),
        "fields": fields, "signals": signal_card(c),
        "pairs": {b: [[_text(p["question"]), _text(p["answer"]), p["kind"]] for p in ps]
                  for b, ps in pairs.items()},
    }  # fmt: skip


def build_report(
    run: Storage | str | Path,
    max_clips: int = 240,
    page_size: int = 12,
    frames: int = 6,
    progress: bool = True,
    default_stages: Sequence[tuple[str, str]] = (),
    evaluations: Sequence[dict[str, Any]] = (),
) -> ReportResult:
    """The report of a run; `default_stages` as in open_layout(); `evaluations`: the
    summaries `make eval` wrote for checkpoints trained on it."""
    layout = open_layout(run, default_stages)
    run = layout.storage
    db = RunDB(layout)
    summary = funnel(db)
    clips = gallery_rows(db, max_clips)
    _, ((total,),) = db.rows("SELECT count(*) FROM per_clip")
    with _staging(run) as report_dir:
        have = None if run.is_local else set(run.files("report/thumbs", ".jpg"))
        thumbs, thumb_stats = make_thumbs(clips, report_dir / "thumbs", frames, progress, have)
        pairs = db.pairs_of([c["clip_id"] for c in clips])
        cards = [clip_card(c, thumbs[c["clip_id"]], pairs.get(c["clip_id"], {}), layout)
                 for c in clips]  # fmt: skip
        sources, source_total = [], 0
        if db.has("sources"):
            sources = db.records(
                "SELECT path, display_width, display_height, duration_s, kept, reject_reason "
                f"FROM sources ORDER BY kept, path LIMIT {SOURCES_SHOWN}"
            )
            for s in sources:
                s["href"] = href(s["path"], layout)
            _, ((source_total,),) = db.rows("SELECT count(*) FROM sources")
        page = render_page(
            run=layout.name,
            run_path=layout.path,
            notice=layout.state.get("notice"),
            generated=time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            summary=summary,
            funnel_chart=funnel_svg(summary["stages"]) if summary["stages"] else "",
            histograms=distributions(db),
            sources=sources,
            sources_total=source_total,
            data=json_safe({"page_size": max(1, page_size), "total": total, "clips": cards}),
            evaluations=list(evaluations),
            annotation=layout.state.get("annotation"),
        )
        atomic_write_bytes(report_dir / "index.html", page.encode("utf-8"))
        if not run.is_local:  # new thumbnails, then the page that shows them
            for thumb in sorted((report_dir / "thumbs").glob("*.jpg")):
                run.upload(thumb, f"report/thumbs/{thumb.name}")
            run.upload(report_dir / "index.html", "report/index.html")
    return ReportResult(index=run.uri("report/index.html"), clips=len(cards),
                        total_clips=int(total), thumbs=thumb_stats)  # fmt: skip


@contextlib.contextmanager
def _staging(run: Storage) -> Iterator[Path]:
    """Where the report is written: in the run for a local one, else a temporary folder
    whose files are uploaded into the run afterwards."""
    if run.is_local:
        yield run.local_path("report")
        return
    with tempfile.TemporaryDirectory(prefix="curation-report-") as tmp:
        yield Path(tmp)
