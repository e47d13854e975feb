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
import time
from collections.abc import Iterator
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


@contextlib.contextmanager
def native_stderr_to(log_file: Path | None) -> Iterator[Path | None]:
    """Native writes to file descriptor 2 go to `log_file` (appended) for the duration;
    Python's sys.stderr keeps the console. None: nothing is redirected."""
    if log_file is None:
        yield None
        return
    log_file.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    console_fd = os.dup(2)
    console = os.fdopen(console_fd, "w", buffering=1, encoding=sys.stderr.encoding or "utf-8",
                        errors="backslashreplace")  # fmt: skip
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)]
    saved = sys.stderr
    with open(log_file, "ab") as log:
        log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} pid {os.getpid()}\n".encode())
        log.flush()
        os.dup2(log.fileno(), 2)
        sys.stderr = console
        for h in handlers:
            if getattr(h, "stream", None) is saved:
                h.setStream(console)
        try:
            yield log_file
        finally:
            console.flush()
            os.dup2(console_fd, 2)
            sys.stderr = saved
            for h in handlers:
                if getattr(h, "stream", None) is console:
                    h.setStream(saved)
            console.close()
