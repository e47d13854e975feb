"""The in-process runner: stage after stage, shard after shard. For tests and debugging."""

from __future__ import annotations

from dataclasses import dataclass

from tqdm import tqdm

from curation.rundir import RunDir
from curation.shard_task import run_global, run_shard
from stages.base import Stage


@dataclass
class LocalRunner:
    progress: bool = True

    def run(self, steps: list[tuple[Stage, str]], run: RunDir, shards: list[int]) -> None:
        for stage, input_folder in steps:
            done = set() if stage.retryable_reasons else run.finished_shards(stage.output_folder)
            todo = [s for s in shards if s not in done]
            if not todo:
                continue
            if stage.is_global:
                run_global(stage, run, input_folder, shards)
                continue
            stage.setup()
            for shard in tqdm(todo, desc=stage.name, unit="shard", disable=not self.progress):
                run_shard(stage, run, input_folder, shard)
