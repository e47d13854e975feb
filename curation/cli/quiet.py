"""A console that shows progress, warnings a user can act on and the funnel, nothing else.

The native libraries under the stages log on their own: MediaPipe and TFLite through glog and
absl ("inference_feedback_manager.cc ... Disabling support for feedback tensors" once a frame
batch), onnxruntime, and Python libraries at INFO. By default (no --verbose):
- their Python loggers are raised to WARNING, glog and TensorFlow are told to log errors only
  (environment variables that this process and every Ray worker it starts inherit);
- whatever native code still writes to the process's standard error (file descriptor 2) goes to
  a log file, while Python's own stderr (logging, progress bars, errors) stays on the console.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# Python loggers of libraries that talk at INFO while they work.
CHATTY = ("faster_whisper", "sentence_transformers", "transformers", "httpx", "filelock",
          "urllib3", "ray.data", "absl")  # fmt: skip
# Read by glog, TensorFlow Lite and absl when they start (MediaPipe), in every process.
QUIET_ENV = {"GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "2", "GRPC_VERBOSITY": "ERROR"}


def quiet_libraries() -> None:
    """Errors only from the libraries, here and in the workers this process starts."""
    for name, value in QUIET_ENV.items():
        os.environ.setdefault(name, value)
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.WARNING)


@dataclass
class NativeLog:
    """Where native stderr went: `path` once the block has ended."""

    path: Path | None = None


@contextlib.contextmanager
def native_stderr_to(log_file: Path | None) -> Iterator[NativeLog]:
    """Native writes to file descriptor 2 go to a log for the duration, while Python's
    sys.stderr keeps the console; afterwards the log is appended to `log_file` when its folder's
    parent (the run) exists, else it stays in the temporary folder (a run that failed before it
    was made leaves nothing in its place). None: nothing is redirected."""
    out = NativeLog()
    if log_file is None:
        yield out
        return
    sys.stderr.flush()
    console_fd = os.dup(2)
    console = os.fdopen(console_fd, "w", buffering=1, encoding=sys.stderr.encoding or "utf-8",
                        errors="backslashreplace")  # fmt: skip
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)]
    saved = sys.stderr
    with tempfile.NamedTemporaryFile("ab", prefix="curation-native-", suffix=".log",
                                     delete=False) as log:  # fmt: skip
        log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} pid {os.getpid()}\n".encode())
        log.flush()
        os.dup2(log.fileno(), 2)
        sys.stderr = console
        for h in handlers:
            if getattr(h, "stream", None) is saved:
                h.setStream(console)
        try:
            yield out
        finally:
            console.flush()
            os.dup2(console_fd, 2)
            sys.stderr = saved
            for h in handlers:
                if getattr(h, "stream", None) is console:
                    h.setStream(saved)
            console.close()
            out.path = _keep(Path(log.name), log_file)  # a failed run's log is kept too


def _keep(temporary: Path, wanted: Path) -> Path:
    """The log appended to `wanted`; left where it is when the run does not exist or its disk
    is full (the error the run stops with is the one to report, not this one)."""
    if not wanted.parent.parent.is_dir():
        return temporary
    try:
        wanted.parent.mkdir(exist_ok=True)
        with open(wanted, "ab") as dst:
            dst.write(temporary.read_bytes())
    except OSError:
        return temporary
    temporary.unlink()
    return wanted
