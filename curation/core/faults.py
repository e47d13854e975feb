"""Faults of the machine, told apart from verdicts on an input, in one place.

A stage judges its inputs: a broken video becomes a row with a reason, and that row is final
(a resume skips finished shards). The same call can also fail because the machine did: the
disk is full, a mount went away, a file vanished after it was probed, the object store or a
model server is down, memory ran out. Such a failure says nothing about the clip, so it must
never become a verdict. `fault_of()` decides which errors are the machine's, from the error
itself (an errno, an exception type, or the text a tool printed: ffmpeg and the object-store
client say "No space left on device", "Connection refused", ...); the code that turns errors
into verdicts asks it first (`check`), and the engine wraps whatever escapes a shard
(`in_shard`). A `MachineFault` fails the shard (nothing is written for it), the run stops with
one line (`MachineFault.line()`), and running the same command again redoes the shard.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
from collections.abc import Iterator

# errno -> (what happened, what the user should do)
_DISK = "free space (or give the run root more), then run the same command to resume"
_MOUNT = "check that the folder is mounted and readable, then run the same command to resume"
_NET = "check that the server is up and reachable, then run the same command to resume"
_PERM = "check the permissions of the run root and the sources, then run the same command"
ERRNOS: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("no space left on device", _DISK),
    errno.EDQUOT: ("disk quota exceeded", _DISK),
    errno.EFBIG: ("file too large for the file system", _DISK),
    errno.EIO: ("input/output error", _MOUNT),
    errno.ENOENT: ("a file that was there is gone (a lost mount or a moved folder?)", _MOUNT),
    errno.ESTALE: ("stale file handle (a lost network mount)", _MOUNT),
    errno.ENOTCONN: ("transport endpoint is not connected (a lost mount)", _MOUNT),
    errno.EROFS: ("read-only file system", _PERM),
    errno.EACCES: ("permission denied", _PERM),
    errno.EPERM: ("operation not permitted", _PERM),
    errno.ENOMEM: (
        "out of memory",
        "give the workers more memory or run fewer at once, then resume",
    ),
    errno.ECONNREFUSED: ("connection refused", _NET),
    errno.ECONNRESET: ("connection reset", _NET),
    errno.ECONNABORTED: ("connection aborted", _NET),
    errno.EHOSTUNREACH: ("host unreachable", _NET),
    errno.ENETUNREACH: ("network unreachable", _NET),
    errno.ETIMEDOUT: ("connection timed out", _NET),
}
# How tools print the same errors: the C library's own words (ffmpeg, ffprobe) and the
# object-store client's (pyarrow's S3 errors carry no errno, only text).
_TEXTS: list[tuple[re.Pattern[str], int]] = [
    (re.compile(re.escape(os.strerror(code)), re.I), code) for code in ERRNOS
] + [
    (re.compile(r"couldn'?t connect to server|curl ?code: ?(6|7|28)\b|NETWORK_CONNECTION", re.I),
     errno.ECONNREFUSED),
    (re.compile(r"server (is )?unavailable|service unavailable|SlowDown", re.I), errno.ECONNRESET),
]  # fmt: skip
# ffmpeg's lines about a decoder's error (5.x words them the first way, later versions the
# others), anchored at the line's start so that no file name can match.
_DECODING = re.compile(
    r"^\s*(\[[^\]]+ @ 0x[0-9a-f]+\] )?(Error while decoding stream #|"
    r"Error submitting packet to decoder|Decoding error)", re.I,
)  # fmt: skip


class MachineFault(Exception):
    """The machine failed, not the input: the shard fails and a resume redoes it.

    Not a RuntimeError on purpose: the stages turn RuntimeErrors of their tools into verdicts,
    and a fault must pass through them.
    """

    def __init__(self, what: str, hint: str, detail: str = "", code: int = 0, **context: str):
        super().__init__(what, hint, detail, code, context)
        self.what, self.hint, self.detail, self.code = what, hint, detail, code  # code: errno
        self.context = {k: v for k, v in context.items() if v}

    @classmethod
    def of_errno(cls, code: int, detail: str = "", **context: str) -> MachineFault:
        return cls(*ERRNOS[code], detail=detail, code=code, **context)

    def __reduce__(self) -> tuple:  # Ray sends a worker's fault to the driver pickled
        return (_rebuild, (self.what, self.hint, self.detail, self.code, self.context))

    def at(self, **context: str) -> MachineFault:
        """The same fault with where it happened (stage, shard, path) added."""
        merged = {**{k: v for k, v in context.items() if v}, **self.context}
        return MachineFault(self.what, self.hint, self.detail, self.code, **merged)

    def line(self) -> str:
        """One line for the console: what failed, where, and what to do."""
        where = self.context.get("path")
        inside = ", ".join(
            f"{k} {self.context[k]}" for k in ("stage", "shard") if k in self.context
        )
        text = self.what + (f" at {where}" if where else "") + (f" ({inside})" if inside else "")
        return f"{text}: {self.hint}"

    def __str__(self) -> str:
        return self.line() + (f" [{self.detail}]" if self.detail else "")


def _rebuild(what: str, hint: str, detail: str, code: int, context: dict[str, str]) -> MachineFault:
    return MachineFault(what, hint, detail, code, **context)


def fault_in_text(text: str | bytes | None) -> MachineFault | None:
    """A fault named in a tool's message (ffmpeg's stderr, an object-store error), if any."""
    if not text:
        return None
    message = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    # A decoder's complaint is about the data, whatever errno text it borrows (AAC's catch-all
    # error prints as "Operation not permitted"); reading and writing errors name no decoder.
    message = "\n".join(ln for ln in message.splitlines() if not _DECODING.search(ln))
    for pattern, code in _TEXTS:
        if pattern.search(message):
            return MachineFault.of_errno(code, _last_line(message))
    return None


def fault_of(error: BaseException | None) -> MachineFault | None:
    """The machine fault behind an exception (inside a runner's wrapper too), or None."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, MachineFault) and hasattr(error, "what"):
            return error  # (Ray may raise a copy of its type whose cause holds the fault)
        if isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError":
            return MachineFault.of_errno(errno.ENOMEM, f"{type(error).__name__}: {error}")
        if isinstance(error, OSError) and error.errno in ERRNOS:
            return MachineFault.of_errno(error.errno, str(error)[:300],
                                         path=str(error.filename or ""))  # fmt: skip
        if isinstance(error, (OSError, ConnectionError, TimeoutError)) or _is_transport(error):
            found = fault_in_text(str(error))
            if found is not None:
                return found
        # Look inside only what a runner wrapped (Ray's task and user-code errors): an error
        # that code raised from another on purpose (a model that cannot be had) is its own.
        if not type(error).__module__.startswith("ray"):
            return None
        error = getattr(error, "cause", None) or error.__cause__
    return None


def check(error: BaseException | str | bytes | None, path: str = "") -> None:
    """Raise the MachineFault in `error` (an exception or a tool's message); return when the
    error is about the input, so the caller may record its verdict. `path`: the input the tool
    read. A missing input whose folder is there is a verdict on that file; a missing folder is
    a lost mount or a moved folder, which a resume can get past once it is back."""
    fault = fault_in_text(error) if isinstance(error, (str, bytes)) else fault_of(error)
    if fault is None:
        return
    if fault.code == errno.ENOENT:
        if path and "://" not in path and os.path.isdir(os.path.dirname(path)):
            return
        raise fault.at(path=path)
    raise fault


@contextlib.contextmanager
def in_shard(**context: str) -> Iterator[None]:
    """Any machine fault raised inside becomes a MachineFault naming `context` (stage, shard)."""
    try:
        yield
    except MachineFault as fault:
        raise fault.at(**context) from None
    except Exception as exc:
        fault = fault_of(exc)
        if fault is None:
            raise
        raise fault.at(**context) from exc


def find_fault(error: BaseException) -> MachineFault | None:
    """A MachineFault anywhere in what a runner raised (Ray wraps a worker's exception, and
    keeps its text when it cannot keep its type)."""
    found = fault_of(error)
    if found is not None:
        return found
    match = re.search(r"MachineFault: (.+)", str(error))
    if match:  # the worker's fault as Ray printed it: keep its line
        return MachineFault(match.group(1).split(": ")[0], match.group(1).split(": ", 1)[-1])
    return None


def _is_transport(error: BaseException) -> bool:
    """HTTP clients' connection errors (httpx, requests), known by name: no import needed."""
    return any(c.__name__ in ("ConnectError", "ConnectTimeout", "RemoteProtocolError",
                              "ReadTimeout", "ConnectionError") for c in type(error).__mro__)  # fmt: skip


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""
