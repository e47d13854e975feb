"""Running a model stage whose backend is vLLM through Ray Data's LLM processor.

The stage's clips (from every pending shard) become one Ray Dataset: Ray tasks sample frames
and build requests, the `ray.data.llm` processor runs the vLLM engines, and the answers come
back to the driver (text only: small), where failed rows are resubmitted up to the stage's
`attempts` and each shard is written by the stage's own `finish()`. This is a barrier between
the streaming segments before and after it.
"""

from __future__ import annotations

from typing import Any

import pyarrow.parquet as pq

from curation.backends.base import Generation
from curation.backends.vllm_backend import build_processor, generation_from_row, request_row
from curation.rundir import RunDir, write_table
from curation.shard_task import kept_rows, merge_retried, shard_stats


def _prepare(stage: Any):
    def prepare(row: dict[str, Any]) -> dict[str, Any]:
        clip = row["clip"]
        try:
            return {
                **request_row(stage.backend, stage.prompt_for(clip)),
                "_key": row["_key"],
                "_error": "",
            }
        except RuntimeError as exc:
            return {
                "messages": [],
                "sampling_params": {},
                "_key": row["_key"],
                "_error": f"frame sampling: {exc}",
            }

    return prepare


def run_llm_stage(stage: Any, run: RunDir, input_folder: str, shards: list[int]) -> None:
    import ray.data

    work: dict[int, list[dict[str, Any]]] = {}
    previous: dict[int, list[dict[str, Any]]] = {}  # finished shards whose failed rows are retried
    for shard in shards:
        rows = kept_rows(pq.read_table(run.shard_path(input_folder, shard))).to_pylist()
        target = run.shard_path(stage.output_folder, shard)
        if target.exists():
            previous[shard] = pq.read_table(target).to_pylist()
            redo = {
                r["clip_id"]
                for r in previous[shard]
                if r["reject_reason"] in stage.retryable_reasons
            }
            rows = [r for r in rows if r["clip_id"] in redo]
            if not rows:
                continue
        work[shard] = rows
    items = {(s, i): clip for s, clips in work.items() for i, clip in enumerate(clips)}
    outcome: dict[tuple[int, int], tuple[Generation, int]] = {}
    pending = list(items)
    processor = build_processor(stage.backend, stage.frames)
    for attempt in range(1, stage.attempts + 1):
        if not pending:
            break
        ds = ray.data.from_items([{"_key": list(k), "clip": items[k]} for k in pending])
        prepared = ds.map(_prepare(stage), num_cpus=1)
        for row in processor(prepared).take_all():
            key = tuple(row["_key"])
            gen = Generation(error=row["_error"]) if row.get("_error") else generation_from_row(row)
            outcome[key] = (gen, attempt)
        pending = [k for k in pending if stage.verdict(outcome[k][0]) is not None]
    for shard, clips in work.items():
        out = stage.finish(clips, [outcome[(shard, i)] for i in range(len(clips))])
        if shard in previous:
            out = merge_retried(previous[shard], out, stage.schema)
        write_table(
            run.shard_path(stage.output_folder, shard),
            out,
            shard_stats(stage, shard, out.num_rows, out, 0.0),
        )
