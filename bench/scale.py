"""Benchmark: does the Ray runner's driver stay small as the run grows, and does throughput hold?

One model stage (structure: an LLM fills the fields of each clip from its consensus caption)
runs over a small and a 10x larger set of clips, on a local Ray cluster of `--nodes` worker
nodes (a head with no CPUs, as on a real cluster), against a fast OpenAI-compatible server
on 127.0.0.1 that answers valid fields at once: this measures the runner, not a model. Each
size runs in a fresh driver process connected to the cluster, which reports its own peak
resident memory (what would grow if clips, prompts or answers came back to the driver) and
its wall time. Printed side by side: clips, shards, wall time, clips per second, driver peak
RSS, and the large run against the small one.

Goal (issue "Curation on a real Ray cluster at paper scale"): the driver's peak RSS grows by at
most 25% for 10x the clips, and clips/s does not fall.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ANSWER = json.dumps(
    {
        "face": {"appearance": "", "expression": "smiling", "emotion": "happy", "gaze": ""},
        "body": {"appearance": "", "clothing": "a red coat", "action": "waving", "pose": ""},
        "interaction": {"with_people": "", "with_objects": "", "environment": "a street"},
    }
)


def serve() -> tuple[ThreadingHTTPServer, str]:
    """An OpenAI-compatible chat server that answers every request with valid fields."""
    body = json.dumps({"choices": [{"message": {"role": "assistant", "content": ANSWER}}],
                       "usage": {"prompt_tokens": 50, "completion_tokens": 40}}).encode()  # fmt: skip

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the runner's clients reuse connections

        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/v1"


def write_input(root: Path, clips: int, per_shard: int) -> list[str]:
    """A run folder whose `consensus/` holds `clips` kept clips in shards of `per_shard`."""
    import pyarrow as pa

    from curation.core import schemas
    from curation.core.units import Unit
    from curation.rundir import RunDir

    run = RunDir(root, "scale")
    keys = []
    for k, start in enumerate(range(0, clips, per_shard)):
        rows = [{"clip_id": f"{i:012d}", "source_id": "s", "path": "/synthetic.mp4", "kept": True,
                 "consensus": f"A woman in a red coat waves in a street, clip {i}."}
                for i in range(start, min(clips, start + per_shard))]  # fmt: skip
        unit = Unit(k, 0)
        run.write_unit("consensus", unit, pa.Table.from_pylist(rows, schema=schemas.CONSENSUS), {})
        keys.append(unit.key)
    return keys


def driver(args: argparse.Namespace) -> None:
    """One measured run, in its own process: connect, run the stage, report."""
    from curation.core.units import Unit
    from curation.engine.runners.ray_data import RayRunner
    from curation.engine.shard_task import Step
    from curation.engine.totals import Totals
    from curation.rundir import RunDir
    from stages.structure import StructureConfig, StructureStage

    cfg = StructureConfig.model_validate({
        "backend": {"kind": "openai", "model": "fast", "base_url": args.url, "concurrency": 16,
                    "retries": 2, "backoff_s": 0.1},
        "grounding": 0.0,
        "prepare": {"cpus": 0.25, "concurrency": 8},
        "resources": {"cpus": 0.25, "concurrency": args.workers},
    })  # fmt: skip
    stage = StructureStage(cfg=cfg)
    run = RayRunner(address=args.address, progress=False)
    units = [Unit.parse(k) for k in json.loads(Path(args.units).read_text())]
    started = time.perf_counter()
    totals = Totals()
    run.run([Step(stage, "consensus")], RunDir(args.root, "scale"), units, totals)
    wall = time.perf_counter() - started
    t = totals.get("structure")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"clips": t.rows_out, "kept": t.kept, "shards": t.shards, "wall_s": wall,
                      "peak_rss_bytes": peak}))  # fmt: skip


def measure(address: str, url: str, clips: int, per_shard: int, workers: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        keys = write_input(Path(tmp), clips, per_shard)
        listing = Path(tmp) / "units.json"
        listing.write_text(json.dumps(keys))
        out = subprocess.run(
            [sys.executable, __file__, "--driver", "--address", address, "--url", url,
             "--root", tmp, "--units", str(listing), "--workers", str(workers)],
            check=True, capture_output=True, text=True, cwd=REPO,
        )  # fmt: skip
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["kept"] != clips:
        raise SystemExit(f"only {result['kept']} of {clips} clips got their fields")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=2000, help="clips in the small run")
    parser.add_argument(
        "--factor", type=int, default=10, help="the large run has this many times more"
    )
    parser.add_argument("--clips-per-shard", type=int, default=64)
    parser.add_argument("--nodes", type=int, default=2, help="worker nodes of the local cluster")
    parser.add_argument("--workers", type=int, default=2, help="model workers (actors)")
    parser.add_argument("--driver", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--units", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.driver:
        driver(args)
        return

    from ray.cluster_utils import Cluster

    httpd, url = serve()
    cluster = Cluster(initialize_head=True,
                      head_node_args={"num_cpus": 0, "include_dashboard": False})  # fmt: skip
    try:
        for _ in range(args.nodes):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        sizes = [("small", args.small), ("large", args.small * args.factor)]
        results = {}
        for name, clips in sizes:
            results[name] = measure(cluster.address, url, clips, args.clips_per_shard, args.workers)
            results[name]["clips_per_s"] = clips / results[name]["wall_s"]
    finally:
        cluster.shutdown()
        httpd.shutdown()

    small, large = results["small"], results["large"]
    print(f"one model stage (structure) through the Ray runner, {args.nodes} worker nodes, "
          f"{args.workers} model workers, a local server answering at once\n")  # fmt: skip
    print(f"{'':<22}{'small':>14}{'large':>14}{'large/small':>14}")
    rows = [("clips", "clips", "{:.0f}"), ("shards", "shards", "{:.0f}"),
            ("wall time (s)", "wall_s", "{:.1f}"), ("clips per second", "clips_per_s", "{:.0f}"),
            ("driver peak RSS (MB)", "peak_rss_bytes", "{:.0f}")]  # fmt: skip
    for label, key, fmt in rows:
        a, b = small[key], large[key]
        scale = 1e-6 if key == "peak_rss_bytes" else 1
        print(f"{label:<22}{fmt.format(a * scale):>14}{fmt.format(b * scale):>14}{b / a:>14.2f}")
    growth = large["peak_rss_bytes"] / small["peak_rss_bytes"] - 1
    speed = large["clips_per_s"] / small["clips_per_s"]
    print(
        f"\ngoal: driver RSS grows <= 25% (measured {growth:+.1%}), clips/s does not fall "
        f"(measured x{speed:.2f})"
    )
    print(
        f"RESULT bench=scale clips_small={small['clips']} clips_large={large['clips']} "
        f"driver_rss_small_bytes={small['peak_rss_bytes']} "
        f"driver_rss_large_bytes={large['peak_rss_bytes']} "
        f"clips_per_s_small={small['clips_per_s']:.1f} clips_per_s_large={large['clips_per_s']:.1f} "
        f"nodes={args.nodes}"
    )


if __name__ == "__main__":
    main()
