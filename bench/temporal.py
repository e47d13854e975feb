"""Benchmark: this pipeline's probe+scenes+temporal+cut against PySceneDetect's CLI and an ffmpeg floor.

What is measured, all in one run, on the same sources (default tests/assets/videos):

(a)  pipeline, in-process: `Pipeline(...).execute()` with the LocalRunner (probe, scenes,
     temporal, cut), wall time. Per-stage `work_s` is printed to show where the time goes.
(a2) the same with the RayRunner in a fresh run directory; `ray.init()` is timed separately,
     before the execute, so startup and execute are reported apart.
(b)  PySceneDetect's CLI, `scenedetect -i V -o DIR detect-adaptive split-video`, once per
     source, summed: the tool this pipeline replaces (split-video's encoder defaults are the
     pipeline's cut defaults: libx264 veryfast crf 22, aac). The sum over the probe-kept
     sources only is shown too; the headline ratio uses all sources, as the pipeline gets them.
(c)  the floor: `ffmpeg -f null` decoding every probe-kept source once, plus one ffmpeg per
     kept clip encoding just that clip with the cut stage's settings. Clips are seeked on the
     input side (`-ss` before `-i`; exact when transcoding), so a clip costs its own frames,
     not a decode of everything before it.

Targets (printed, never enforced): speedup_vs_scenedetect >= 2 and speedup_kept_sources >= 2
(the CLI on the probe-kept sources only, against the pipeline on all), ratio_to_floor <= 1.15.
Every output goes to a fresh temporary directory, removed at the end; sources are read once
beforehand so every measurement sees them in the page cache. `--repeat N` reports medians.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from curation.engine.config import PipelineConfig, load_config
from curation.engine.pipeline import Pipeline
from curation.engine.runners.local import LocalRunner
from curation.engine.runners.ray_data import RayRunner
from curation.engine.sources import list_sources
from curation.rundir import RunDir
from stages.cut import CutConfig

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "curate" / "local.yaml"
STAGES = ("probe", "scenes", "temporal", "cut")
SPEEDUP_TARGET = 2.0
FLOOR_TARGET = 1.15


def run_cmd(cmd: list[str]) -> float:
    """Run one command (argument list, no shell); its wall time in seconds. Fails loudly."""
    started = time.perf_counter()
    result = subprocess.run(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        tail = result.stderr.decode("utf-8", "replace")[-600:]
        raise RuntimeError(f"{cmd[0]} exited with {result.returncode}: {' '.join(cmd)}\n{tail}")
    return elapsed


def pipeline_config(root: Path) -> PipelineConfig:
    return load_config(CONFIG, [f"run.root={root}", "runner.progress=false"])


def run_pipeline(runner: Any, sources: Path, root: Path) -> tuple[float, dict[str, Any], RunDir]:
    """(a)/(a2): one full execute into a fresh run directory."""
    run = RunDir(root, "bench")
    pipeline = Pipeline(pipeline_config(root), run, runner=runner)
    started = time.perf_counter()
    state = pipeline.execute(sources, until="cut")
    return time.perf_counter() - started, state, run


def scenedetect_times(paths: list[str], out: Path) -> dict[str, tuple[float, int]]:
    """(b): per source, the CLI's seconds and the number of clips it wrote."""
    exe = REPO / ".venv" / "bin" / "scenedetect"
    cmd0 = str(exe) if exe.exists() else "scenedetect"
    result = {}
    for i, path in enumerate(paths):
        outdir = out / f"{i:03d}"
        outdir.mkdir()
        seconds = run_cmd([cmd0, "-i", path, "-o", str(outdir), "detect-adaptive", "split-video"])
        result[path] = (seconds, sum(1 for p in outdir.iterdir() if p.is_file()))
    return result


def floor_times(
    sources: list[str], clips: list[dict[str, Any]], cut: CutConfig, out: Path
) -> tuple[float, float]:
    """(c): (decode every kept source once, encode every kept clip on its own)."""
    base = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y"]
    decode = sum(run_cmd([*base, "-i", f"file:{p}", "-f", "null", "-"]) for p in sources)
    encode = 0.0
    for i, clip in enumerate(clips):
        frames = clip["end_frame"] - clip["start_frame"]
        duration = f"{clip['end_s'] - clip['start_s']:.6f}"
        cmd = [*base, "-ss", f"{clip['start_s']:.6f}", "-i", f"file:{clip['path']}", "-t", duration]
        cmd += ["-map", "0:v:0", "-frames:v", str(frames)]
        cmd += ["-vf", "crop=trunc(iw/2)*2:trunc(ih/2)*2", "-c:v", cut.video_codec]
        cmd += ["-preset", cut.preset, "-crf", str(cut.crf), "-pix_fmt", "yuv420p"]
        if clip["has_audio"]:
            cmd += ["-map", "0:a:0", "-c:a", cut.audio_codec, "-b:a", cut.audio_bitrate]
        cmd += ["-movflags", "+faststart", str(out / f"clip{i:04d}.mp4")]
        encode += run_cmd(cmd)
    return decode, encode


def warm_page_cache(paths: list[str]) -> None:
    for path in paths:
        with open(path, "rb") as fh:
            while fh.read(1 << 22):
                pass


def ratio(num: float, den: float) -> float:
    return num / den if den > 0 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=Path, default=REPO / "tests" / "assets" / "videos")
    parser.add_argument("--repeat", type=int, default=1, help="repeat everything, report medians")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray runner (a2)")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    sources: Path = args.sources.resolve()

    all_paths = list_sources(sources, load_config(CONFIG).sources).column("path").to_pylist()
    if not all_paths:
        raise SystemExit(f"no videos under {sources}")
    warm_page_cache(all_paths)
    samples: dict[str, list[float]] = defaultdict(list)
    counts: dict[str, int] = {}

    with tempfile.TemporaryDirectory(prefix="bench-temporal-") as top:

        def fresh() -> Path:
            return Path(tempfile.mkdtemp(dir=top))

        ray_mod = None
        if not args.no_ray:
            import ray

            ray_mod = ray
            started = time.perf_counter()
            ray.init(include_dashboard=False)
            samples["ray_startup"].append(time.perf_counter() - started)
        try:
            for rep in range(args.repeat):
                print(f"[{rep + 1}/{args.repeat}] pipeline (local) ...", flush=True)
                seconds, state, run = run_pipeline(LocalRunner(progress=False), sources, fresh())
                samples["pipeline"].append(seconds)
                for name in STAGES:
                    samples[f"work_{name}"].append(state["stages"][name]["work_s"])
                src = run.read_folder("sources").to_pylist()
                kept_paths = [r["path"] for r in src if r["kept"]]
                try:
                    clips = [r for r in run.read_folder("clips").to_pylist() if r["kept"]]
                except FileNotFoundError:
                    clips = []
                counts.update(sources=len(src), kept=len(kept_paths), clips=len(clips))

                if ray_mod is not None:
                    print(f"[{rep + 1}/{args.repeat}] pipeline (ray) ...", flush=True)
                    ray_s, ray_state, _ = run_pipeline(RayRunner(progress=False), sources, fresh())
                    samples["ray"].append(ray_s)
                    for name in STAGES:
                        samples[f"ray_work_{name}"].append(ray_state["stages"][name]["work_s"])

                print(f"[{rep + 1}/{args.repeat}] scenedetect CLI ...", flush=True)
                per_source = scenedetect_times(all_paths, fresh())
                samples["scenedetect"].append(sum(t for t, _ in per_source.values()))
                samples["scenedetect_kept"].append(sum(per_source[p][0] for p in kept_paths))
                counts["sd_clips"] = sum(n for _, n in per_source.values())
                counts["sd_clips_kept"] = sum(per_source[p][1] for p in kept_paths)

                print(f"[{rep + 1}/{args.repeat}] ffmpeg floor ...", flush=True)
                decode, encode = floor_times(kept_paths, clips, pipeline_config(top).cut, fresh())
                samples["floor_decode"].append(decode)
                samples["floor_encode"].append(encode)
                samples["floor"].append(decode + encode)
        finally:
            if ray_mod is not None:
                ray_mod.shutdown()

    def med(key: str) -> float:
        return statistics.median(samples[key]) if samples[key] else float("nan")

    a, b, c = med("pipeline"), med("scenedetect"), med("floor")
    a2, startup = med("ray"), med("ray_startup")
    n, k = counts["sources"], counts["kept"]
    rows = [
        ("pipeline, local runner (a)", "pipeline"),
        ("pipeline, ray runner execute (a2)", "ray"),
        ("ray.init() startup", "ray_startup"),
        (f"scenedetect CLI, all {n} sources (b)", "scenedetect"),
        (f"scenedetect CLI, {k} probe-kept sources", "scenedetect_kept"),
        (f"floor: decode {k} kept sources", "floor_decode"),
        (f"floor: encode {counts['clips']} kept clips", "floor_encode"),
        ("floor total (c)", "floor"),
    ]
    print(f"\n{args.repeat} repeat(s), median; sources: {sources}")
    print(f"{'measurement':<42} {'seconds':>9} {'x pipeline':>11} {'x floor':>9}  min..max")
    for name, key in rows:
        if samples[key]:
            sec, spread = med(key), f"{min(samples[key]):.2f}..{max(samples[key]):.2f}"
            print(f"{name:<42} {sec:>9.3f} {ratio(sec, a):>11.2f} {ratio(sec, c):>9.2f}  {spread}")
    for label, prefix, total in (("local", "work_", a), ("ray", "ray_work_", a2)):
        if samples[f"{prefix}probe"]:
            work = {s: med(f"{prefix}{s}") for s in STAGES}
            parts = "  ".join(f"{s} {w:.3f}" for s, w in work.items())
            print(
                f"stage work_s ({label}): {parts}  | wall - sum(work_s) {total - sum(work.values()):.3f}"
            )
    print(
        f"counts: {n} sources, {k} kept by probe, {counts['clips']} clips kept by the pipeline, "
        f"scenedetect wrote {counts['sd_clips']} clips ({counts['sd_clips_kept']} from the kept sources)"
    )

    speedup, to_floor = ratio(b, a), ratio(a, c)
    kept_speedup = ratio(med("scenedetect_kept"), a)
    for name, value, target, met in (
        ("speedup_vs_scenedetect >=", speedup, SPEEDUP_TARGET, speedup >= SPEEDUP_TARGET),
        ("speedup_kept_sources >=", kept_speedup, SPEEDUP_TARGET, kept_speedup >= SPEEDUP_TARGET),
        ("ratio_to_floor <=", to_floor, FLOOR_TARGET, to_floor <= FLOOR_TARGET),
    ):
        print(f"target {name} {target}: {value:.3f} -> {'met' if met else 'NOT met'}")
    print(
        f"RESULT bench=temporal speedup_vs_scenedetect={speedup:.3f} "
        f"speedup_kept_sources={kept_speedup:.3f} ratio_to_floor={to_floor:.3f} "
        f"pipeline_s={a:.3f} scenedetect_s={b:.3f} floor_s={c:.3f} ray_s={a2:.3f} "
        f"ray_vs_local={ratio(a2, a):.3f} ray_startup_s={startup:.3f}"
    )


if __name__ == "__main__":
    main()
