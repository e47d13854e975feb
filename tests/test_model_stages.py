"""Model stages in real runs: the offline profile end to end (boxes, brief captions, dedup,
detailed captions, consensus), and a caption server that fails, then recovers, with a re-run
retrying exactly the failed clips."""

import json
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from chat_server import ChatServer
from helpers import REPO, run_cli

from curation.export.omnihuman import check_record
from curation.export.vispeak import check_item
from curation.instructions.exports import check_export

OFFLINE_PROFILE = REPO / "configs" / "curate" / "offline.yaml"


@pytest.fixture(scope="module")
def offline(tiny_models, tmp_path_factory) -> str:
    """The offline profile, its tiny-model paths pointed at this session's tiny models."""
    root = tiny_models["qwen2-vl"].parent
    text = OFFLINE_PROFILE.read_text().replace("models/tiny", str(root))
    path = tmp_path_factory.mktemp("profile") / "offline.yaml"
    path.write_text(text)
    return str(path)


def rows(run, folder):
    return ds.dataset(str(run / folder), format="parquet").to_table().to_pylist()


@pytest.fixture(scope="module")
def sources(tmp_path_factory, videos):
    listing = tmp_path_factory.mktemp("captions") / "list.txt"
    names = [
        "intel_asl_book.mkv",
        "intel_asl_again.mkv",
        "psd_testvideo.mp4",
        "derived_static_obama_910x1136.mp4",
        "derived_talking_obama_910x1136.mp4",
    ]
    listing.write_text("\n".join(str(videos / n) for n in names))
    return listing


@pytest.fixture(scope="module")
def kept_sources(tmp_path_factory, videos):
    """Only the sources whose clips reach the model stages: the two signers, the talking head."""
    listing = tmp_path_factory.mktemp("kept") / "list.txt"
    names = ["intel_asl_book.mkv", "intel_asl_again.mkv", "derived_talking_obama_910x1136.mp4"]
    listing.write_text("\n".join(str(videos / n) for n in names))
    return listing


def test_offline_profile_runs_every_stage_then_instructions(
    sources, videos, tiny_models, offline, tmp_path
):
    listing = tmp_path / "list.txt"  # and a woman throwing both arms up (a timed event)
    listing.write_text(f"{sources.read_text()}\n{videos / 'tfjs_pose_raise_both_hands.mp4'}")
    result = run_cli(
        "curate", "--config", offline, "--sources", str(listing), "--run", "off",
        "--set", f"run.root={tmp_path}",
    )  # fmt: skip
    assert "NOT real" in result.stderr
    # A quiet console: MediaPipe's native lines go to the run's log, the funnel to stdout.
    native = (tmp_path / "off" / "logs" / "curate.log").read_text()
    assert "inference_feedback_manager" in native and "feedback" not in result.stderr
    lines = [ln for ln in result.stderr.replace("\r", "\n").splitlines()
             if ln.strip() and "|" not in ln]  # progress bars aside  # fmt: skip
    assert len(lines) <= 24, "\n".join(lines)
    assert "structure" in result.stdout and "native libraries' log:" in result.stdout
    boxes = {r["clip_id"]: r for r in rows(tmp_path / "off", "boxes")}
    no_human = {k for k, r in boxes.items() if r["reject_reason"] == "no_human"}
    assert no_human and len(no_human) < len(boxes)  # the nature footage, not the signers
    captions = rows(tmp_path / "off", "captions")
    assert {r["clip_id"] for r in captions} == set(boxes) - no_human  # VLMs never saw them
    for r in captions:  # the boxes travel with the clip, not recomputed
        assert r["boxes"] == boxes[r["clip_id"]]["boxes"] and r["frames_with_face"] > 0
    assert captions and all(r["kept"] and r["brief_caption"] for r in captions)
    assert {r["caption_model"] for r in captions} == {str(tiny_models["qwen2-vl"])}
    assert all(
        r["caption_prompt_tokens"] > 0 and r["caption_completion_tokens"] > 0 for r in captions
    )
    dedup = rows(tmp_path / "off", "dedup")
    assert sorted(r["clip_id"] for r in dedup) == sorted(r["clip_id"] for r in captions)
    detailed = rows(tmp_path / "off", "detailed")
    kept_after_dedup = {r["clip_id"] for r in dedup if r["kept"]}
    assert {r["clip_id"] for r in detailed} == kept_after_dedup
    for r in detailed:
        assert [c["model"] for c in r["candidates"]] == ["tiny-vl-a", "tiny-vl-b"]
        assert r["kept"] and r["candidates_ok"] == 2
    consensus = rows(tmp_path / "off", "consensus")
    assert len(consensus) == len(detailed)
    for r in consensus:
        assert r["consensus_model"].endswith("qwen2") and r["agreement"] is not None
        assert 0.0 <= r["agreement"] <= 1.0
    structured = rows(tmp_path / "off", "structured")
    assert len(structured) == len(consensus) and all(r["kept"] for r in structured)
    state = json.loads((tmp_path / "off" / "run.json").read_text())
    assert all(state["stages"][s]["status"] == "done" for s in ("dedup", "structure"))

    out = run_cli("instructions", "--config", offline, "--run", "off", "--set",
                  f"run.root={tmp_path}")  # fmt: skip
    assert "pairs/clip" in out.stdout and "NOT real" in out.stderr
    state = json.loads((tmp_path / "off" / "run.json").read_text())
    exports = tmp_path / "off" / "exports"
    for branch in ("face", "body", "interaction", "speech"):
        stats = state["instructions"][branch]
        pairs = rows(tmp_path / "off", f"instructions/{branch}")
        assert stats["pairs"] == len(pairs) and stats["paper"]
        assert all(p["source"] for p in pairs)  # provenance: template id or model
        assert check_export(exports / f"{branch}.json") == []
        samples = json.loads((exports / f"{branch}.json").read_text())
        assert len(samples) == stats["eligible_clips"]
        assert all(Path(s["video"]).is_file() for s in samples)
    # The talking head is the one clip with a lip-synced speaker: its transcript is the answer,
    # and its sample carries the <audio> tag.
    signals = {r["clip_id"]: r for r in rows(tmp_path / "off", "signals")}
    (speech,) = rows(tmp_path / "off", "instructions/speech")
    talker = signals[speech["clip_id"]]
    assert (
        talker["path"].endswith("derived_talking_obama_910x1136.mp4") and talker["lip_sync"] > 0.5
    )
    assert speech["answer"] == talker["transcript"] and "market" in speech["answer"]
    assert (
        speech["question"].startswith(("What", "Transcribe", "Repeat"))
        and speech["kind"] == "speech"
    )
    (sample,) = json.loads((exports / "speech.json").read_text())
    assert sample["conversations"][0]["value"].startswith("<video>\n<audio>\n")
    assert state["instructions"]["speech"]["removed_by_signals"]["no_transcript"] >= 1
    interaction = rows(tmp_path / "off", "instructions/interaction")
    assert {p["answer"] for p in interaction if p["kind"] == "caption"} == {
        r["consensus"] for r in consensus
    }
    mixed = json.loads((exports / "mixed.json").read_text())
    assert check_export(exports / "mixed.json") == [] and len(mixed) == sum(
        state["exports"]["samples"].values()
    )
    # The audio stage's records: the transcribed speech of every kept clip that has one.
    asr = json.loads((exports / "audio_text.json").read_text())
    assert check_export(exports / "audio_text.json") == [] and len(asr) == 1
    assert asr[0]["audio"] == sample["video"] and state["exports"]["audio_text"] == 1
    assert asr[0]["conversations"][1]["value"] == talker["transcript"].strip()
    # Face tracks ride along for the face branch's crops.
    face = json.loads((exports / "face.json").read_text())
    assert face and all(len(e) == 5 for e in face[0]["face_track"])

    # make export: OmniHuman-1's records, one per kept clip, and the stages' mixtures.
    out = run_cli(
        "export", "--run", "off", "--format", "omnihuman", "--set", f"run.root={tmp_path}"
    )
    assert "framing" in out.stdout and "close_up" in out.stdout
    lines = (exports / "omnihuman.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]  # a plain JSON reader loads every line
    assert len(records) == len(structured) and all(check_record(r) == [] for r in records)
    by_id = {r["id"]: r for r in records}
    talker = by_id[speech["clip_id"]]
    assert talker["conditions"][:2] == ["text", "audio"] and talker["framing"] == "close_up"
    assert talker["reference_frame"]["by"] == "face"
    assert all("audio" not in r["conditions"] for i, r in by_id.items() if i != speech["clip_id"])
    stages = json.loads((exports / "omnihuman_stages.json").read_text())
    assert [s["name"] for s in stages["stages"]] == [
        "stage1_text_image",
        "stage2_audio",
        "stage3_pose",
    ]
    # ViSpeak: one item, from the arms thrown up (labelled 1.2-2.4 s), in the gesture file,
    # its reply after a frame of the span's second half; nobody else waves, points, comes up
    # or leaves. The entries that register the files in ViSpeak's trainer are printed.
    out = run_cli("export", "--run", "off", "--format", "vispeak", "--set", f"run.root={tmp_path}")
    assert "vispeak: 1 items" in out.stdout and "CuratedGestureUnderstanding = {" in out.stdout
    folder = exports / "vispeak"
    (item,) = json.loads((folder / "gesture_understanding.json").read_text())
    assert check_item(item) == [] and item["proactive"] is True
    reply = item["conversations"][2]
    assert reply["value"] == "You raised both hands." and 1.2 <= reply["time"] <= 2.4 + 2
    assert json.loads((folder / "visual_wake_up.json").read_text()) == []
    entries = json.loads((folder / "dataset_config.json").read_text())
    gesture = entries["gesture_understanding"]
    assert gesture["chat_path"] == str(folder / "gesture_understanding.json")
    assert gesture["streaming"] and gesture["audio_proactive"]
    assert (Path(gesture["video_folder_path"]) / item["video"]).is_file()
    events = {r["path"]: r for r in rows(tmp_path / "off", "events")}
    assert all(r["event_fps"] == 5.0 for r in events.values())
    assert all(r["events"] == [] for p, r in events.items() if "raise_both_hands" not in p)
    recorded = json.loads((tmp_path / "off" / "run.json").read_text())["export_formats"]
    assert recorded["omnihuman"]["conditions"]["audio"] == 1
    assert recorded["omnihuman"]["clips"] == len(records)


def test_failed_server_rows_are_recorded_and_only_they_are_retried(
    kept_sources, tiny_models, offline, tmp_path
):
    with ChatServer(tiny_models["qwen2-vl"]) as server:
        args = [
            "curate", "--config", offline, "--sources", str(kept_sources), "--run", "srv",
            "--until", "dedup", "--set", f"run.root={tmp_path}", "--set", "cut.mode=virtual",
            "--set", "brief_caption.backend.kind=openai", "--set", f"brief_caption.backend.base_url={server.url}",
            "--set", "brief_caption.backend.model=tiny", "--set", "brief_caption.backend.retries=1",
            "--set", "brief_caption.backend.backoff_s=0", "--set", "brief_caption.attempts=1",
        ]  # fmt: skip
        server.mode = "error"
        run_cli(*args)  # the run completes
        failed = [r for r in rows(tmp_path / "srv", "captions") if not r["kept"]]
        assert failed and all(
            r["reject_reason"] == "caption_failed" and "HTTP 500" in r["reject_detail"]
            for r in failed
        )
        assert not [r for r in rows(tmp_path / "srv", "captions") if r["kept"]]
        server.mode = "ok"
        before = len(server.requests)
        run_cli(*args)
        assert len(server.requests) - before == len(failed)  # exactly the failed clips, once each
        captions = rows(tmp_path / "srv", "captions")
        assert len(captions) == len(failed) and all(r["kept"] for r in captions)
        assert len(rows(tmp_path / "srv", "dedup")) == len(
            captions
        )  # recomputed on the new captions


def test_dedup_resumed_with_some_shards_written_still_sees_every_clip(
    offline, kept_sources, tmp_path
):
    args = [
        "curate", "--config", offline, "--sources", str(kept_sources), "--run", "part", "--until",
        "dedup", "--set", f"run.root={tmp_path}", "--set", "run.shard_size=1", "--set", "cut.mode=virtual",
        # Paraphrase-level threshold so that clips in different shards are duplicates of each other.
        "--set", "dedup.threshold=0.05",
    ]  # fmt: skip
    run_cli(*args)
    full = sorted(
        (r["clip_id"], r["kept"], r["duplicate_of"]) for r in rows(tmp_path / "part", "dedup")
    )
    assert sum(not k for _, k, _ in full) >= 1
    # As if killed while writing dedup's shards: only the shard of the kept clip was written, so
    # a resume that looked at the missing shards alone would elect one of its duplicates.
    for part in (tmp_path / "part" / "dedup").glob("part-*.parquet"):
        if not any(
            r["kept"] and r["duplicate_of"] is None for r in pq.read_table(part).to_pylist()
        ):
            part.unlink()
    run_cli(*args)
    again = sorted(
        (r["clip_id"], r["kept"], r["duplicate_of"]) for r in rows(tmp_path / "part", "dedup")
    )
    assert again == full
