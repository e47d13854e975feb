"""Errors of the data side: one sample that cannot be used, or a training file that is malformed."""

from __future__ import annotations

import errno
import os

from curation.core import faults


class SampleError(RuntimeError):
    """One sample cannot be loaded. `reason` is a short stable key (counted in training logs,
    e.g. "missing_video", "too_long"); the message says which file or sample and why."""

    def __init__(self, reason: str, message: str, sample_id: str | None = None):
        self.reason = reason
        self.detail = message
        self.sample_id = sample_id
        prefix = f"sample {sample_id}: " if sample_id is not None else ""
        super().__init__(f"{prefix}{reason}: {message}")

    def __reduce__(self):  # keep reason and sample id across processes (DataLoader, Ray)
        return (SampleError, (self.reason, self.detail, self.sample_id))

    def for_sample(self, sample_id: str) -> SampleError:
        """The same error, naming the sample it happened to."""
        return SampleError(self.reason, self.detail, sample_id)


def missing(reason: str, path: str) -> SampleError:
    """The error for an input that is not there: the sample's own when its folder is there;
    when the folder is gone too (a lost mount, a moved dataset) every sample would follow, so
    it is the machine's, raised as a MachineFault that stops the work instead."""
    faults.check(FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path), path)
    return SampleError(reason, f"{path} does not exist")


class RecordError(ValueError):
    """A training data file is malformed; the message names the file and the record."""
