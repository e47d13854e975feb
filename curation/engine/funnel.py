"""The funnel: per stage, rows in, rows out, kept, rejected by reason and time."""

from __future__ import annotations

from typing import Any


def format_funnel(state: dict[str, Any]) -> str:
    w = max([5, *(len(n) for n in state["stages"])])
    f = max([6, *(len(s["folder"]) for s in state["stages"].values())])
    header = f"{'stage':<{w}} {'folder':<{f}} {'status':<8} {'in':>7} {'out':>7} {'kept':>7}  {'work_s':>8}  rejected"
    lines = [header, "-" * len(header)]
    for name, s in state["stages"].items():
        reasons = ", ".join(f"{r}={n}" for r, n in s["rejected"].items()) or "-"
        lines.append(
            f"{name:<{w}} {s['folder']:<{f}} {s['status']:<8} {s['rows_in']:>7} {s['rows_out']:>7} "
            f"{s['kept']:>7}  {s['work_s']:>8.2f}  {reasons}"
        )
    last = state.get("last_invocation") or {}
    if "wall_s" in last:
        lines.append(f"wall time of this invocation: {last['wall_s']:.2f} s")
    return "\n".join(lines)
