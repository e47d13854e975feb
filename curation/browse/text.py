"""Plain-text rendering for the terminal: tables of clips and one clip field by field.

Manifests hold untrusted text (file names, model output: the tiny test models write raw
control bytes). Printed as is, an escape sequence in a caption would drive the terminal, so
control and bidi-override characters are shown as `\\xNN`/`\\uNNNN` escapes instead.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

# C0/C1 controls (newline and tab included: a table cell must stay on one line) and the
# bidirectional overrides that can make text read differently from what it is.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_KEEP_TAIL = ("path", "clip_path")  # for paths the file name is the informative end


def json_safe(value: Any) -> Any:
    """DuckDB's Python values as JSON: NaN/inf become null, dates ISO strings, bytes hex."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value


def printable(text: Any, keep_newlines: bool = False) -> str:
    """`text` as a string with every control character shown as an escape."""

    def escape(m: re.Match[str]) -> str:
        ch = m.group(0)
        if keep_newlines and ch in "\n\t":
            return ch
        return f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"

    return _UNPRINTABLE.sub(escape, str(text))


def cell(value: Any, width: int = 40, tail: bool = False) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        text = f"{value:.3f}".rstrip("0").rstrip(".") if abs(value) < 1e6 else f"{value:.4g}"
    elif isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, dict | list | tuple):
        text = json.dumps(json_safe(value), ensure_ascii=False, separators=(",", ":"))
    else:
        text = str(value)
    text = printable(text)
    if len(text) > width:
        text = "…" + text[-(width - 1) :] if tail else text[: width - 1] + "…"
    return text


def format_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], width: int = 40) -> str:
    cells = [
        [cell(v, width, c in _KEEP_TAIL) for c, v in zip(columns, row, strict=True)] for row in rows
    ]
    header = [printable(c) for c in columns]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("-" * len(lines[0]))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def _value_lines(key: str, value: Any, indent: str = "") -> list[str]:
    if isinstance(value, dict):
        out = [f"{indent}{printable(key)}:"]
        for k, v in value.items():
            out += _value_lines(str(k), v, indent + "  ")
        return out
    if isinstance(value, list) and value and isinstance(value[0], dict):
        out = [f"{indent}{printable(key)}: ({len(value)})"]
        for item in value:
            out.append(f"{indent}  - {cell(item, width=10_000)}")
        return out
    return [f"{indent}{printable(key)}: {cell(value, width=10_000)}"]


def format_clip(record: dict[str, Any]) -> str:
    """Every field of a clip (per_clip's columns, its source row, its pairs), one per line."""
    lines: list[str] = []
    for key, value in record.items():
        if key == "instructions":
            for branch, pairs in value.items():
                lines.append(f"instructions/{printable(branch)}: ({len(pairs)} pairs)")
                for p in pairs:
                    lines.append(f"  {p['turn']}. [{p['kind']}] Q: {printable(p['question'])}")
                    lines.append(f"     A: {printable(p['answer'])}")
            continue
        lines += _value_lines(key, value)
    return "\n".join(lines)
