"""The base of every config section: unknown keys are errors, assignments are validated."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

# Answers that start like this are refusals, not captions (every model stage checks them).
REFUSALS = ["I'm sorry", "I am sorry", "I cannot", "I can't", "As an AI"]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Resources(Section):
    """What one worker of a stage needs, and how many workers may run at once."""

    cpus: float = Field(1.0, ge=0)
    gpus: float = Field(0.0, ge=0)
    memory_gb: float | None = Field(None, gt=0)
    concurrency: int = Field(4, ge=1, description="maximum parallel workers of this stage")
