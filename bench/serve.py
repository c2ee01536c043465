"""Load test of ``seqadapt-serve`` on loopback: ``python -m bench.serve RUN_DIR`` writes bench/serve/results.{json,md}.

Three servers of the same run are started side by side: dynamic batching (``--max-batch 32``) with the default
5 ms window and with none (``--max-wait-ms 0``: a batch takes what queued while the last one ran), and one request
per batch (``--max-batch 1``, the one-task-per-request baseline). Clients send one request object per HTTP request,
the run's tasks mixed round-robin, at 1, 8 and 32 concurrent clients; the two servers' phases alternate
(batched, baseline, batched, baseline…) so drift in the machine's speed hits both alike, and each figure is
the median over rounds. ``seqadapt-predict`` answers the same rows from standard input for comparison. Bounded
in requests per phase and in seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import httpx

from bench.common import machine_name, write_results
from seqadapt.data import SplitSizes, build_splits, load_task_spec, read_source

OUT = Path(__file__).parent / "serve"
CLIENTS = (1, 8, 32)
SERVERS = {"batched": (32, 5.0), "batched_no_wait": (32, 0.0), "one_per_request": (1, 0.0)}  # max batch, wait ms


def free_port() -> int:
    """A port nothing listens on now, on loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rows(run_dir: Path, per_task: int) -> list[dict[str, Any]]:
    """``per_task`` test rows of each of the run's tasks, interleaved: the requests every phase sends."""
    tasks = json.loads((run_dir / "results.json").read_text())["tasks"]
    by_task = []
    for task in tasks:
        spec = load_task_spec(task)
        with warnings.catch_warnings():  # a small train split lacks labels: only its test rows are used
            warnings.simplefilter("ignore")
            test = build_splits(spec, read_source(spec), SplitSizes(train=50, val=0, test=per_task)).test
        by_task.append([{"task": task, "text": text} for text in test["text"][:per_task]])
    return [row for group in zip(*by_task) for row in group]


def start(run_dir: Path, max_batch: int, max_wait_ms: float) -> tuple[subprocess.Popen, str]:
    """``seqadapt-serve`` in its own process, once /health says ready."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "seqadapt.cli.serve", str(run_dir), "--port", str(port),
                               "--max-batch", str(max_batch), "--max-wait-ms", str(max_wait_ms)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                return server, url
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    server.kill()
    raise TimeoutError(f"seqadapt-serve on {url} did not get ready")


async def phase(url: str, requests: list[dict[str, Any]], clients: int, seconds: float) -> dict[str, float]:
    """``clients`` concurrent clients sending ``requests`` one by one until all are answered or ``seconds`` pass."""
    latencies: list[float] = []
    queue = list(reversed(requests))
    stop = time.perf_counter() + seconds

    async def client(http: httpx.AsyncClient) -> None:
        while queue and time.perf_counter() < stop:
            request = queue.pop()
            sent = time.perf_counter()
            response = await http.post(f"{url}/predict", json=request)
            response.raise_for_status()
            latencies.append(time.perf_counter() - sent)

    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=clients)) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    wall = time.perf_counter() - started
    ordered = sorted(latencies)
    return {"requests": len(latencies), "rows_per_s": len(latencies) / wall,
            "p50_ms": 1000 * ordered[len(ordered) // 2], "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]}


def predict_seconds(run_dir: Path, requests: list[dict[str, Any]]) -> dict[str, float]:
    """seqadapt-predict on the same rows (JSON lines on standard input): wall seconds, and less its start-up
    (the same command answering one row)."""
    def timed(lines: list[dict[str, Any]]) -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "seqadapt.cli.predict", str(run_dir)], check=True, capture_output=True,
                       input="\n".join(json.dumps(line) for line in lines).encode(), timeout=1800)
        return time.perf_counter() - started
    whole, one = timed(requests), timed(requests[:1])
    return {"rows": len(requests), "seconds": whole, "startup_seconds": one,
            "rows_per_s_after_startup": len(requests) / max(whole - one, 1e-9)}


def bench(run_dir: Path, per_task: int, rounds: int, seconds: float) -> dict[str, Any]:
    requests = rows(run_dir, per_task)
    servers = {name: start(run_dir, *settings) for name, settings in SERVERS.items()}
    try:
        measured: dict[str, dict[int, list[dict[str, float]]]] = {name: {c: [] for c in CLIENTS} for name in servers}
        for _ in range(rounds):
            for clients in CLIENTS:
                for name, (_, url) in servers.items():
                    measured[name][clients].append(asyncio.run(phase(url, requests, clients, seconds)))
        metrics = httpx.get(f"{servers['batched'][1]}/metrics").text
    finally:
        for server, _ in servers.values():
            server.terminate()
            server.wait(30)
    medians = {name: {clients: {key: statistics.median(m[key] for m in runs) for key in runs[0]}
                      for clients, runs in by_clients.items()} for name, by_clients in measured.items()}
    gain = {name: {clients: medians[name][clients]["rows_per_s"] / medians["one_per_request"][clients]["rows_per_s"]
                   for clients in CLIENTS} for name in ("batched", "batched_no_wait")}
    return {"machine": machine_name(), "run_dir": str(run_dir), "rows": len(requests), "rounds": rounds,
            "servers": medians, "batching_gain": gain, "predict": predict_seconds(run_dir, requests),
            "batched_server_metrics": [line for line in metrics.splitlines() if line.startswith("seqadapt_batch_rows")]}


def markdown(results: dict[str, Any]) -> str:
    lines = [f"`seqadapt-serve` on loopback, {results['machine']}: {results['rows']} single-row requests mixing the "
             f"run's tasks per phase, medians of {results['rounds']} alternating rounds; the clients share the machine.",
             "", "| server | clients | rows/s | p50 ms | p99 ms | throughput vs one per request |", "|---|---|---|---|---|---|"]
    for name, (batch, wait) in SERVERS.items():
        for clients in CLIENTS:
            m = results["servers"][name][clients]
            gain = results["batching_gain"].get(name, {}).get(clients, 1.0)
            lines.append(f"| {name} (--max-batch {batch}, --max-wait-ms {wait:g}) | {clients} | {m['rows_per_s']:.1f} | "
                         f"{m['p50_ms']:.0f} | {m['p99_ms']:.0f} | {gain:.2f}x |")
    p = results["predict"]
    lines += ["", f"seqadapt-predict on the same {p['rows']} rows: {p['seconds']:.1f} s ({p['startup_seconds']:.1f} s of "
              f"it start-up), {p['rows_per_s_after_startup']:.1f} rows/s after start-up."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--per-task", type=int, default=50, help="test rows per task in every phase")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=120, help="the longest a phase runs")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    results = bench(args.run_dir, args.per_task, args.rounds, args.seconds)
    write_results(args.out, results, markdown(results))


if __name__ == "__main__":
    main()
