"""`python -m curation browse`: the funnel, WHERE filters, one clip, JSON, partial runs, errors."""

import io
import json
import shutil
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from types import SimpleNamespace

import pyarrow.dataset as ds
from helpers import run_cli
from offline_run import HOSTILE, HTML_NAME, partial_copy

from curation.browse.db import RunDB
from curation.browse.layout import open_layout
from curation.browse.report import build_report
from curation.browse.summary import funnel
from curation.cli import main
from stages import registry


def browse(run, *args, check=True):
    """`python -m curation browse ...` in this process (a subprocess costs a second of imports)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["browse", "--run", run.name, "--root", str(run.parent), *args])
    assert code == 0 or not check, err.getvalue()
    return SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


def rows(run, folder):
    return ds.dataset(str(run / folder), format="parquet").to_table().num_rows


def test_summary_counts_match_run_json_and_the_rows(browse_run):
    summary = json.loads(browse(browse_run, "--json").stdout)
    recorded = json.loads((browse_run / "run.json").read_text())["stages"]
    assert [s["stage"] for s in summary["stages"]] == list(recorded)
    for s in summary["stages"]:
        r = recorded[s["stage"]]
        assert s["status"] == "done" and s["waiting"] == 0
        assert (s["rows_in"], s["rows_out"], s["kept"], s["rejected"]) == (
            r["rows_in"], r["rows_out"], r["kept"], r["rejected"])  # fmt: skip
        assert s["kept"] + sum(s["rejected"].values()) == s["rows_out"]  # no row went missing
    assert summary["stages"][0]["rejected"] == {"low_resolution": 1}
    assert set(summary["instructions"]) == {"face", "body", "interaction", "speech"}
    text = run_cli("browse", "--run", browse_run.name, "--root", str(browse_run.parent)).stdout
    assert "low_resolution=1" in text and "instructions/face:" in text


def test_per_clip_view_has_every_clip_once_with_its_last_verdict(browse_run):
    db = RunDB(open_layout(browse_run))
    _, got = db.rows("SELECT count(*), count(DISTINCT clip_id) FROM per_clip")
    assert got[0] == (rows(browse_run, "scenes"),) * 2
    verdicts = dict(db.rows("SELECT stage, count(*) FROM per_clip GROUP BY ALL")[1])
    assert verdicts["structure"] == rows(browse_run, "structured")
    assert {"boxes", "brief_caption", "consensus", "pairs_face"} <= set(db.columns)
    # Columns of every stage travel with the clip: the kept clips have boxes and fields.
    _, kept = db.rows("SELECT len(boxes), fields.face.emotion IS NOT NULL FROM per_clip WHERE kept")
    assert kept and all(n > 0 for n, _ in kept)


def test_where_filters_and_json_output(browse_run, html_clip):
    out = json.loads(
        browse(browse_run, "--where", "kept AND frames_with_face > 0", "--json").stdout
    )
    assert out["count"] == rows(browse_run, "structured") == len(out["rows"])
    assert html_clip in {r["clip_id"] for r in out["rows"]}
    out = json.loads(browse(browse_run, "--where", "reject_reason = 'static'", "--columns",
                            "clip_id, stage, round(duration_s, 1) AS d", "--json").stdout)  # fmt: skip
    assert out["count"] >= 1 and out["columns"] == ["clip_id", "stage", "d"]
    assert all(r["stage"] == "temporal" for r in out["rows"])
    text = browse(browse_run, "--list", "--limit", "1").stdout
    assert "clips match, 1 shown" in text
    out = json.loads(
        browse(browse_run, "--sql", "SELECT count(*) AS n FROM pairs", "--json").stdout
    )
    assert out["rows"][0]["n"] == sum(rows(browse_run, f"instructions/{b}")
                                      for b in ("face", "body", "interaction", "speech"))  # fmt: skip
    # The signals are columns like any other.
    out = json.loads(browse(browse_run, "--where", "speech_s > 0 AND lip_sync > 0.5", "--columns",
                            "clip_id, framing, transcript", "--json").stdout)  # fmt: skip
    assert out["count"] == 1 and "market" in out["rows"][0]["transcript"]
    assert out["rows"][0]["framing"] == "close_up"


def test_bad_where_clause_is_a_clear_error_with_exit_code_2(browse_run):
    result = browse(browse_run, "--where", "kept AND no_such_column > 1", check=False)
    assert result.returncode == 2
    assert "bad --where clause" in result.stderr and "no_such_column" in result.stderr
    assert "Traceback" not in result.stderr
    result = browse(browse_run, "--where", "kept AND (", check=False)
    assert result.returncode == 2 and "syntax error" in result.stderr.lower()


def test_unknown_run_names_the_path(tmp_path):
    result = run_cli("browse", "--run", "nope", "--root", str(tmp_path), check=False)
    assert result.returncode == 2 and str(tmp_path / "nope") in result.stderr
    result = run_cli("report", "--run", "nope", "--root", str(tmp_path), check=False)
    assert result.returncode == 2 and str(tmp_path / "nope") in result.stderr


def test_one_clip_shows_every_field_and_escapes_control_characters(browse_run, html_clip):
    record = json.loads(browse(browse_run, "--clip", html_clip[:6], "--json").stdout)
    db = RunDB(open_layout(browse_run))
    assert set(db.columns) <= set(record) and record["clip_id"] == html_clip
    assert record["brief_caption"] == HOSTILE and record["source"]["path"].endswith(HTML_NAME)
    assert record["instructions"] and set(record["instructions"]) <= {"face", "body", "interaction"}
    text = browse(browse_run, "--clip", html_clip).stdout
    assert "\x1b" not in text and "\\x1b[2J" in text  # the terminal escape is shown, not obeyed
    assert "instructions/face:" in text and "boxes: (" in text
    result = browse(browse_run, "--clip", "zzzz", check=False)
    assert result.returncode == 2 and "no clip 'zzzz'" in result.stderr


def test_partial_run_reads_finished_shards_only(browse_run, tmp_path):
    run = partial_copy(browse_run, tmp_path / "partial")
    summary = json.loads(browse(run, "--json").stdout)
    by = {s["folder"]: s for s in summary["stages"]}
    assert (
        by["dedup"]["status"] == "partial"
        and by["dedup"]["shards_done"] == by["captions"]["shards_done"] - 1
    )
    assert by["dedup"]["waiting"] >= 1  # the kept clip's shard is the half-written one
    assert by["dedup"]["rows_in"] + by["dedup"]["waiting"] == by["captions"]["kept"]
    assert by["detailed"]["status"] == "pending" and by["detailed"]["rows_out"] == 0
    assert by["structured"]["status"] == "pending" and summary["instructions"] == {}
    listed = json.loads(browse(run, "--list", "--limit", "100", "--json").stdout)
    assert listed["count"] == rows(browse_run, "scenes")  # still every clip, once
    stages = {r["clip_id"]: r["stage"] for r in listed["rows"] if r["kept"]}
    # A kept clip waits where its last finished shard is: the one in the half-written dedup
    # shard at embed, the other (its dedup shard is whole) at dedup.
    assert sorted(stages.values()) == ["dedup", "embed"]


def test_run_with_only_probed_sources(browse_run, tmp_path):
    run = tmp_path / "early"
    run.mkdir()
    shutil.copytree(browse_run / "sources", run / "sources")
    shutil.copytree(browse_run / "inputs", run / "inputs")
    summary = funnel(RunDB(open_layout(run, registry.default_folders())))
    assert summary["stages"][0]["rows_out"] == rows(browse_run, "sources")
    assert all(s["status"] == "pending" for s in summary["stages"][1:])
    assert json.loads(browse(run, "--list", "--json").stdout)["count"] == 0
    result = build_report(
        run, progress=False, default_stages=registry.default_folders()
    )  # the report too: funnel and sources, no clips
    assert result.clips == 0 and "low_resolution" in Path(result.index).read_text()
