"""The validation split of `make instructions`: whole sources, by file name, in every export."""

from __future__ import annotations

import json

import pyarrow as pa

from curation.core.units import Unit
from curation.engine.instructions import write_exports
from curation.instructions.split import source_position, val_sources
from curation.rundir import RunDir
from stages.instructions import PAIRS

NAMES = [f"interview_{k:02d}.mp4" for k in range(12)]


def make_run(tmp_path, folder_of=lambda k: "/data/a") -> RunDir:
    """Twelve sources of three clips each; every clip has a face pair and a transcript."""
    run = RunDir(tmp_path, "run")
    clips, pairs = [], []
    for k, name in enumerate(NAMES):
        for c in range(3):
            cid = f"s{k}-c{c}"
            clips.append({"clip_id": cid, "source_id": f"s{k}", "path": f"{folder_of(k)}/{name}",
                          "kept": True, "clip_path": f"/media/{cid}.mp4",
                          "transcript": f"words of {cid}"})  # fmt: skip
            pairs += [{"clip_id": cid, "source_id": f"s{k}", "branch": "face", "turn": t,
                       "question": f"q{t}?", "answer": f"a{t}.", "kind": "open",
                       "video": f"/media/{cid}.mp4", "has_audio": True, "face_track": []}
                      for t in range(2)]  # fmt: skip
    run.write_unit("structured", Unit(0, 0), pa.Table.from_pylist(clips), {})
    run.write_unit("instructions/face", Unit(0, 0), pa.Table.from_pylist(pairs, schema=PAIRS), {})
    return run


def ids(path) -> set[str]:
    return {item["id"] for item in json.loads(path.read_text())}


def test_whole_sources_go_to_validation_in_every_export(tmp_path):
    run = make_run(tmp_path)
    result = write_exports(run, val_share=0.5)
    exports = run.path / "exports"
    held = {f"s{k}" for k, name in enumerate(NAMES) if source_position(name) < 0.5}
    assert 0 < len(held) < len(NAMES)  # this set of names splits
    val, train = ids(exports / "val" / "face.json"), ids(exports / "face.json")
    assert not val & train and len(val | train) == 36
    assert {i.split("-")[0] for i in val} == held  # every clip of a held source, no other
    assert ids(exports / "val" / "mixed.json") == val and ids(exports / "mixed.json") == train
    asr_val = {i["audio"] for i in json.loads((exports / "val" / "audio_text.json").read_text())}
    assert {a.split("/")[-1].split("-")[0] for a in asr_val} == held
    assert result["val"] == {"sources": len(held), "of_sources": 12, "samples": {"face": len(val)},
                             "mixed": len(val), "audio_text": 3 * len(held)}  # fmt: skip
    assert result["samples"] == {"face": len(train)}


def test_the_split_is_the_same_wherever_the_files_are_mounted(tmp_path):
    runs = [make_run(tmp_path / "a"), make_run(tmp_path / "b", lambda k: f"/mnt/cluster/{k}")]
    counts = [write_exports(run, val_share=0.3) for run in runs]
    assert counts[0] == counts[1] and counts[0]["val"]["sources"] > 0
    a, b = (ids(run.path / "exports" / "val" / "face.json") for run in runs)
    assert a == b
    paths = {f"s{k}": f"/x/{name}" for k, name in enumerate(NAMES)}
    assert val_sources(paths, 0.0) == set() and val_sources(paths, 0.999999) == set(paths)
