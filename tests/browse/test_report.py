"""`python -m curation report`: files, escaping, relative links, thumbnail cache, partial runs."""

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

from offline_run import HOSTILE, HTML_NAME, IMG_NAME, TALKING_NAME, partial_copy

from curation.browse.page import script_json
from curation.browse.report import build_report


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.scripts, self.tags = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attrs = dict(attrs)
        if tag == "a" and attrs.get("href") and not attrs["href"].startswith("#"):
            self.links.append(attrs["href"])
        if tag == "script":
            self.scripts.append(attrs.get("type"))


def page_data(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S)
    return json.loads(m.group(1))


def test_report_page_is_self_contained_and_escapes_untrusted_text(report):
    html = report.read_text()
    parsed = Links()
    parsed.feed(html)
    assert parsed.scripts == ["application/json", None]  # the hostile caption added none
    assert "b" not in parsed.tags and "img" not in parsed.tags  # nor any <b> or <img>
    assert (
        "http://" not in html.replace("http://www.w3.org/2000/svg", "") and "https://" not in html
    )
    assert "</script><script>console.error" not in html and "\\u003c/script\\u003e" in html
    assert "&lt;img src=x onerror=console.error(&#x27;name&#x27;)&gt;.mp4" in html  # sources table
    data = page_data(html)
    clip = next(c for c in data["clips"] if c["path"] and c["path"].endswith(HTML_NAME))
    assert clip["brief"] == HOSTILE.replace("\x1b", "\\x1b") and clip["source"] == "b>.mp4"
    assert any(b[1] == "face" for b in clip["boxes"]) and clip["thumbs"]
    assert clip["pairs"] and set(clip["pairs"]) <= {"face", "body", "interaction"}
    assert clip["signals"]["speech_s"] == 0 and clip["signals"]["framing"] == "half_body"
    assert data["total"] == len(data["clips"]) and data["page_size"] == 1
    # The charts: a funnel and seven histograms, drawn here as inline SVG.
    assert html.count('class="chart funnel"') == 1 and html.count('<figure class="hist">') == 7
    assert "Lip sync" in html and "Speech per clip" in html
    assert IMG_NAME not in html


def test_the_talking_head_shows_its_signals(report):
    data = page_data(report.read_text())
    (talker,) = [c for c in data["clips"] if c["path"] and c["path"].endswith(TALKING_NAME)]
    s = talker["signals"]
    assert "market" in s["transcript"] and s["segments"] and 4.5 < s["speech_s"] < 6
    assert s["lip_sync"] > 0.5 and abs(s["offset"]) < 0.1 and s["framing"] == "close_up"
    # Keypoints at the thumbnails' times (both are the boxes' sampled frames), a skeleton.
    times = {round(t["t"], 2) for t in talker["thumbs"]}
    assert s["poses"] and {round(p[0], 2) for p in s["poses"]} <= times and s["skeleton"]
    assert all(p is None or (0 <= p[0] <= 1 and 0 <= p[1] <= 1) for _, ps in s["poses"] for p in ps)
    assert "speech" in talker["pairs"] and talker["pairs"]["speech"][0][1] == s["transcript"]


def test_links_are_relative_and_point_at_real_files(report):
    html = report.read_text()
    parsed = Links()
    parsed.feed(html)
    data = page_data(html)
    hrefs = parsed.links + [
        c[k] for c in data["clips"] for k in ("clip_href", "source_href") if c[k]
    ]
    thumbs = [f"thumbs/{t['src']}" for c in data["clips"] for t in c["thumbs"]]
    assert hrefs and thumbs
    for href in hrefs + thumbs:
        assert not href.startswith(("/", "file:")), href
        target = (report.parent / unquote(href.split("#")[0])).resolve()
        assert target.is_file(), href
    assert any(unquote(h).endswith(HTML_NAME) for h in hrefs)
    assert any("/media/clips/" in unquote(h) for h in hrefs)


def test_script_json_cannot_close_its_element():
    text = script_json({"caption": "</script><!-- & \u2028"})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"caption": "</script><!-- & \u2028"}


def test_thumbnails_are_made_once(report, browse_run):
    before = {p.name: p.stat().st_mtime_ns for p in (browse_run / "report" / "thumbs").iterdir()}
    result = build_report(browse_run, page_size=1, progress=False)  # as the fixture made it
    assert result.thumbs["made"] == 0 and result.thumbs["reused"] == len(before) > 0
    after = {p.name: p.stat().st_mtime_ns for p in (browse_run / "report" / "thumbs").iterdir()}
    assert after == before


def test_report_of_a_partial_run(browse_run, tmp_path):
    run = partial_copy(browse_run, tmp_path / "partial")
    result = build_report(run, progress=False)
    data = page_data(Path(result.index).read_text())
    assert result.clips == result.total_clips == len(data["clips"]) > 0
    assert not any(c["consensus"] for c in data["clips"])  # not reached yet
    assert "partial" in Path(result.index).read_text()


def test_a_clips_events_go_to_its_card_as_data():
    from curation.browse.report import signal_card

    event = {"type": "<b>wave</b>", "start_s": 1.2, "end_s": 2.0, "confidence": 0.9, "person": 0}
    card = signal_card({"speech_s": 0.0, "framing": "half_body", "events": [event]})
    assert card["events"] == [["<b>wave</b>", 1.2, 2.0, 0.9, 0]]  # text, drawn as text
    assert signal_card({"speech_s": 0.0, "framing": "none", "events": None})["events"] == []
    assert script_json({"e": card["events"]}).count("<b>") == 0  # escaped inside the page's JSON


def test_the_evaluation_section_shows_each_checkpoint_beside_the_paper(tmp_path, capsys):
    from curation.browse.page import evaluation_tables
    from curation.cli.browse import _evaluations

    summary = {
        "checkpoint": "runs/x/<b>final</b>", "data": "sets", "samples_per_s": 1.5,
        "tasks": {"dfew": {"metrics": {"uar": 0.25}, "paper": {"uar": 0.7486}, "samples": 5,
                           "skipped": 1, "unreadable": 0}},
    }  # fmt: skip
    (tmp_path / "stage3-final").mkdir()
    (tmp_path / "stage3-final" / "summary.json").write_text(json.dumps(summary))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "summary.json").write_text("{")
    found = _evaluations(tmp_path)
    assert found == [summary] and "broken/summary.json left out" in capsys.readouterr().err
    html = evaluation_tables(found)
    assert "<td>dfew</td><td>uar</td><td>0.2500</td><td>0.7486</td><td>5</td><td>1</td>" in html
    assert "&lt;b&gt;final" in html and "<b>" not in html
    assert "make eval CHECKPOINT" in evaluation_tables([])


def test_the_human_labels_section_shows_agreement_and_the_pipeline_against_people():
    from curation.browse.page import annotation_table

    html = annotation_table(
        {"agreement": {"emotion_alpha": 0.4, "pipeline_emotion_accuracy": None}}
    )
    assert "<td>emotion alpha</td><td>0.400</td>" in html and "<td>-</td>" in html
    assert "make annotate" in annotation_table(None)
