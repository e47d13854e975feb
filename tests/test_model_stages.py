"""Brief captions and de-duplication in a real run: the offline profile end to end, and a
caption server that fails, then recovers, with a re-run retrying exactly the failed clips."""

import json

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from chat_server import ChatServer
from helpers import REPO, run_cli

OFFLINE = str(REPO / "configs" / "curate" / "offline.yaml")


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
    ]
    listing.write_text("\n".join(str(videos / n) for n in names))
    return listing


def test_offline_profile_runs_through_dedup(sources, tiny_models, tmp_path):
    result = run_cli(
        "curate", "--config", OFFLINE, "--sources", str(sources), "--run", "off",
        "--set", f"run.root={tmp_path}", "--set", f"tiny_models={tiny_models['qwen2-vl'].parent}",
        "--set", f"brief_caption.backend.model={tiny_models['qwen2-vl']}", "--set", "cut.mode=virtual",
    )  # fmt: skip
    assert "NOT real" in result.stderr
    captions = rows(tmp_path / "off", "captions")
    assert captions and all(r["kept"] and r["brief_caption"] for r in captions)
    assert {r["caption_model"] for r in captions} == {str(tiny_models["qwen2-vl"])}
    assert all(
        r["caption_prompt_tokens"] > 0 and r["caption_completion_tokens"] > 0 for r in captions
    )
    dedup = rows(tmp_path / "off", "dedup")
    assert sorted(r["clip_id"] for r in dedup) == sorted(r["clip_id"] for r in captions)
    state = json.loads((tmp_path / "off" / "run.json").read_text())
    assert state["stages"]["dedup"]["status"] == "done"


def test_failed_server_rows_are_recorded_and_only_they_are_retried(sources, tiny_models, tmp_path):
    with ChatServer(tiny_models["qwen2-vl"]) as server:
        args = [
            "curate", "--config", OFFLINE, "--sources", str(sources), "--run", "srv",
            "--set", f"run.root={tmp_path}", "--set", "tiny_models=null", "--set", "cut.mode=virtual",
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
    sources, tiny_models, tmp_path
):
    args = [
        "curate", "--config", OFFLINE, "--sources", str(sources), "--run", "part",
        "--set", f"run.root={tmp_path}", "--set", "tiny_models=null", "--set", "run.shard_size=1",
        "--set", f"brief_caption.backend.model={tiny_models['qwen2-vl']}", "--set", "cut.mode=virtual",
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
