"""A run whose root is an S3 bucket, end to end through the CLI as a user runs it: curate (a
source in the bucket too), browse, report and instructions, against a real S3-compatible
server started here (moto's standalone server on 127.0.0.1)."""

from __future__ import annotations

import json
import os

from helpers import REPO, run_cli

from curation.instructions.exports import check_sample
from curation.storage import Storage


def test_a_run_in_a_bucket_curates_browses_reports_and_exports(s3, tiny_models, videos, tmp_path):
    bucket = Storage.open(s3)
    with open(videos / "intel_asl_again.mkv", "rb") as src:  # a source in the bucket
        bucket.write_bytes("videos/asl again.mkv", src.read())
    listing = tmp_path / "list.txt"
    listing.write_text(f"{videos / 'intel_asl_book.mkv'}\n{s3}/videos/asl again.mkv\n"
                       f"{s3}/videos/missing.mp4\n")  # fmt: skip
    profile = tmp_path / "offline.yaml"
    text = (REPO / "configs" / "curate" / "offline.yaml").read_text()
    profile.write_text(text.replace("models/tiny", str(tiny_models["qwen2-vl"].parent)))
    root = f"{s3}/runs"
    run_cli("curate", "--config", str(profile), "--sources", str(listing), "--run", "r",
            "--set", f"run.root={root}")  # fmt: skip
    run = Storage.open(f"{root}/r")
    state = json.loads(run.read_bytes("run.json"))
    assert all(s["status"] == "done" for s in state["stages"].values())
    assert state["stages"]["probe"]["rejected"] == {"missing_file": 1}
    clips = run.read_table("clips/" + run.files("clips", ".parquet")[0]).to_pylist()
    assert clips and all(c["clip_path"].startswith(f"{root}/r/media/clips/") for c in clips)
    assert all(Storage.open(c["clip_path"].rsplit("/", 1)[0]).kind(c["clip_path"].rsplit("/", 1)[1]) == "file"
               for c in clips)  # fmt: skip
    assert not os.path.exists("data_manifests/r")  # nothing went to a local folder instead

    funnel = json.loads(run_cli("browse", "--run", "r", "--root", root, "--json").stdout)
    by = {s["stage"]: s for s in funnel["stages"]}
    assert by["structure"]["status"] == "done" and by["structure"]["kept"] == 2
    listed = json.loads(run_cli("browse", "--run", "r", "--root", root, "--where", "kept",
                                "--json").stdout)  # fmt: skip
    assert listed["count"] == 2

    out = run_cli("report", "--run", "r", "--root", root, "--no-progress").stdout
    assert f"report: {root}/r/report/index.html" in out
    page = run.read_bytes("report/index.html").decode()
    thumbs = run.files("report/thumbs", ".jpg")
    assert thumbs and all(name in page for name in thumbs)
    assert "../media/clips/" in page  # clips linked relative to the report, inside the bucket

    # No --config: the run's recorded (offline) config is used, as for a local run.
    done = run_cli("instructions", "--run", "r", "--set", f"run.root={root}")
    assert "NOT real" in done.stderr
    mixed = json.loads(run.read_bytes("exports/mixed.json"))
    assert mixed and all(check_sample(item) == [] for item in mixed)
    assert all(item["video"].startswith(f"{root}/r/media/clips/") for item in mixed)
