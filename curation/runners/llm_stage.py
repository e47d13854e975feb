"""Running a model stage with vLLM backends through Ray Data's LLM processor.

The stage's clips (from every pending shard) become one Ray Dataset per model call: Ray
tasks sample frames and build requests, the `ray.data.llm` processor runs that model's vLLM
engines, and the answers come back to the driver (text only: small), where unusable answers
are resubmitted up to the stage's `attempts`. Each shard is then written by the stage's own
`finish()`. A call of the same stage on another backend (a model served over HTTP, say) is
asked from the driver. This is a barrier between the streaming segments before and after it.
"""

from __future__ import annotations

from typing import Any

import pyarrow.parquet as pq

from curation.backends.base import Generation
from curation.backends.vllm_backend import build_processor, generation_from_row, request_row
from curation.rundir import RunDir, write_table
from curation.shard_task import kept_rows, merge_retried, shard_stats
from stages.model_stage import ModelCall, ModelStage, Outcome

Key = tuple[int, int]  # (shard, row in shard)


def _prepare(call: ModelCall):
    def prepare(row: dict[str, Any]) -> dict[str, Any]:
        try:
            prompt = call.prompt_for(row["clip"])
            prompt.attempt = row["_attempt"]
            return {**request_row(call.backend, prompt),
                    "_key": row["_key"], "_error": ""}  # fmt: skip
        except RuntimeError as exc:
            return {"messages": [], "sampling_params": {}, "_key": row["_key"],
                    "_error": str(exc)}  # fmt: skip

    return prepare


def _ask(call: ModelCall, attempts: int, items: dict[Key, dict[str, Any]]) -> dict[Key, Outcome]:
    import ray.data

    outcome: dict[Key, Outcome] = {}
    pending = list(items)
    processor = build_processor(call.backend, call.frames)
    for attempt in range(1, attempts + 1):
        if not pending:
            break
        ds = ray.data.from_items(
            [{"_key": list(k), "clip": items[k], "_attempt": attempt - 1} for k in pending]
        )
        for row in processor(ds.map(_prepare(call), num_cpus=1)).take_all():
            key = tuple(row["_key"])
            gen = Generation(error=row["_error"]) if row.get("_error") else generation_from_row(row)
            outcome[key] = (gen, attempt)
        pending = [k for k in pending if call.verdict(outcome[k][0]) is not None]
    return outcome


def run_llm_stage(stage: ModelStage, run: RunDir, input_folder: str, shards: list[int]) -> None:
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
    if not work:
        return
    items = {(s, i): clip for s, clips in work.items() for i, clip in enumerate(clips)}
    answers = []
    for call in stage.calls():
        if call.backend.kind == "vllm":
            answers.append(_ask(call, stage.attempts, items))
            continue
        # Another backend (a model behind an OpenAI-compatible server): asked from here,
        # a shard at a time so that sampled frames never pile up in the driver.
        asked: dict[Key, Outcome] = {}
        for shard, clips in work.items():
            for i, outcome in enumerate(stage.ask(call, clips)):
                asked[(shard, i)] = outcome
            stage.release()
        answers.append(asked)
    for shard, clips in work.items():
        outcomes = [[a[(shard, i)] for i in range(len(clips))] for a in answers]
        out = stage.finish(clips, outcomes)
        if shard in previous:
            out = merge_retried(previous[shard], out, stage.schema)
        write_table(
            run.shard_path(stage.output_folder, shard),
            out,
            shard_stats(stage, shard, out.num_rows, out, 0.0),
        )
