"""Load on `dlsuite serve`: single-example requests from concurrent clients on loopback, for a bounded time.

Starts `dlsuite serve` on an export in a subprocess, then drives it from a client in another process
(`--clients` keep-alive connections on asyncio, each sending one request at a time) for `--seconds`,
and prints requests per second, p50/p99 latency, the server's resident memory before and after, its
CPU time per request (what throughput on an idle machine follows from), the machine's load average,
the wall time and the command that reproduced it; then, from the server's Prometheus counters, how many
requests went through the batching queues in the window and in how many TensorFlow calls. With `--ceiling`, once
the server has stopped, the same example is run in this process straight through the SavedModel's signature,
in batches of each `--ceiling-batches` size, for `--ceiling-seconds` each, one call at a time: what the model's
own arithmetic allows on this machine (a server that overlaps two calls can pass it a little, not by a multiple). The request is
one example built from the export's `serving_default` signature: a random uint8 image of `--image-size` for
an image input (any size ones get `--image-size`), a sentence for a string input.

    python -m benchmarks.serve_load --model-dir exports/vision-classification
    python -m benchmarks.serve_load --model-dir exports/vision-segmentation --image-size 64x96 --ceiling
"""

import argparse
import asyncio
import collections
import json
import multiprocessing
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SENTENCE = "Congratulations! You have won a free prize, call now to claim it before midnight"


def request_example(metadata, image_size):
    """One example for the export's serving_default signature: a sentence or a random uint8 image."""
    signature = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]
    (name, spec), = signature["inputs"].items()
    dims = [int(dim["size"]) for dim in spec["tensor_shape"]["dim"]][1:]
    if spec["dtype"] == "DT_STRING":
        return SENTENCE
    height, width = image_size
    shape = [size if size > 0 else default for size, default in zip(dims, [height, width, 3])]
    return np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)


def request_body(example):
    """One TF Serving row-format request of one example."""
    return json.dumps({"instances": [example if isinstance(example, str) else example.tolist()]}).encode()


def ceiling(model_dir, example, batch_sizes, seconds):
    """`{batch size: examples per second}` of the newest version's serving_default run in this process on
    copies of `example`, with no server, no JSON and no queue between."""
    from pipelines.served_model import load_version
    from shared.export import versions

    _, signatures = load_version(Path(model_dir) / str(max(versions(Path(model_dir)))))
    signature = signatures["serving_default"]
    (name,) = signature.specs
    rates = {}
    for size in batch_sizes:
        batch = np.array([example] * size, dtype=object if isinstance(example, str) else None)
        signature({name: batch})  # the first call of a shape traces
        calls, start = 0, time.monotonic()
        while time.monotonic() - start < seconds:
            signature({name: batch})
            calls += 1
        rates[size] = calls * size / (time.monotonic() - start)
    return rates


async def _client(port, path, body, stop_at, latencies):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    while time.monotonic() < stop_at:
        start = time.monotonic()
        writer.write(head + body)
        header = await reader.readuntil(b"\r\n\r\n")  # one read for the status line and headers
        status = int(header[9:12])
        start_length = header.lower().index(b"content-length:") + 15
        await reader.readexactly(int(header[start_length:header.index(b"\r\n", start_length)]))
        if status != 200:
            raise RuntimeError(f"HTTP {status}")
        latencies.append(time.monotonic() - start)
    writer.close()


def drive(port, path, body, clients, seconds, queue):
    """The client process: `clients` connections for `seconds`; puts the latencies on `queue`."""
    latencies = []

    async def main():
        stop_at = time.monotonic() + seconds
        await asyncio.gather(*(_client(port, path, body, stop_at, latencies) for _ in range(clients)))

    cpu = time.process_time()
    asyncio.run(main())
    queue.put((latencies, time.process_time() - cpu))


def processes(pid):
    """`pid` and its child processes (`dlsuite serve --workers N` forks N)."""
    with open(f"/proc/{pid}/task/{pid}/children") as children:
        return [pid, *map(int, children.read().split())]


def rss_mb(pid):
    """Resident memory of `pid` and its children."""
    total = 0
    for process in processes(pid):
        with open(f"/proc/{process}/status") as status:
            total += int(next(line for line in status if line.startswith("VmRSS:")).split()[1]) / 1024
    return total


def cpu_seconds(pid):
    """User + system CPU time so far of `pid` and its children (all their threads)."""
    total = 0
    for process in processes(pid):
        with open(f"/proc/{process}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", required=True, help="export folder with version subfolders")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup-seconds", type=float, default=3)
    parser.add_argument("--image-size", default="64x96", help="HEIGHTxWIDTH for inputs of any image size")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--repo", default=str(REPO), help="checkout whose `dlsuite serve` to measure")
    parser.add_argument("--serve-flags", default="", help="extra `dlsuite serve` flags, e.g. '--max-batch-size 32'")
    parser.add_argument("--ceiling", action="store_true", help="then time the signature in this process, no server")
    parser.add_argument("--ceiling-batches", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--ceiling-seconds", type=float, default=8)
    args = parser.parse_args(argv)
    image_size = tuple(int(size) for size in args.image_size.split("x"))
    name = Path(args.model_dir).name
    base = f"http://127.0.0.1:{args.port}/v1/models/{name}"
    wall = time.monotonic()
    server = start_server(args.repo, args.model_dir, args.port, shlex.split(args.serve_flags))
    try:
        with urllib.request.urlopen(f"{base}/metadata", timeout=60) as response:
            metadata = json.loads(response.read())
        example = request_example(metadata, image_size)
        body = request_body(example)
        context = multiprocessing.get_context("spawn")
        queue = context.Queue()
        warmup = context.Process(target=drive, args=(args.port, f"/v1/models/{name}:predict", body, args.clients,
                                                     args.warmup_seconds, queue))
        warmup.start()
        queue.get()
        warmup.join()
        rss_before, cpu_before = rss_mb(server.pid), cpu_seconds(server.pid)
        batching_before = batching_counters(args.port)
        client = context.Process(target=drive, args=(args.port, f"/v1/models/{name}:predict", body, args.clients,
                                                     args.seconds, queue))
        client.start()
        latencies, client_cpu = queue.get()
        latencies = np.array(latencies)
        client.join()
        rss_after, cpu = rss_mb(server.pid), cpu_seconds(server.pid) - cpu_before
        batching_after = batching_counters(args.port)
    finally:
        server.terminate()
        server.wait(timeout=60)
    p50, p99 = np.percentile(latencies, [50, 99]) * 1000
    print(f"{name}: {len(latencies) / args.seconds:.0f} req/s from {args.clients} clients over {args.seconds:g} s "
          f"(single-example requests of {len(body)} bytes), p50 {p50:.1f} ms, p99 {p99:.1f} ms; server RSS "
          f"{rss_before:.0f} MB before, {rss_after:.0f} MB after ({(rss_after / rss_before - 1) * 100:+.1f}%); "
          f"server CPU {cpu * 1000 / len(latencies):.2f} ms per request (client "
          f"{client_cpu * 1000 / len(latencies):.2f} ms); load average {os.getloadavg()[0]:.1f}; "
          f"wall {time.monotonic() - wall:.0f} s")
    if batching_before is not None and batching_after is not None:
        requests, calls = (batching_after[key] - batching_before[key]
                           for key in ("dlsuite_batched_requests_total", "dlsuite_batch_calls_total"))
        print(f"batching: {requests} requests went through the queues in {calls} TensorFlow calls "
              f"({requests / max(calls, 1):.1f} per call; the most in one call since start: "
              f"{batching_after['dlsuite_batch_largest']})")
    if args.ceiling:
        rates = ceiling(args.model_dir, example, args.ceiling_batches, args.ceiling_seconds)
        print("ceiling, the signature in this process: " + ", ".join(
            f"{rate:.0f} examples/s in batches of {size}" for size, rate in rates.items())
            + f"; the server reached {len(latencies) / args.seconds / max(rates.values()):.0%} of the best")
    print("command: python -m benchmarks.serve_load " + " ".join(shlex.quote(arg) for arg in (argv or sys.argv[1:])))


def batching_counters(port):
    """The server's `dlsuite_batch*` counters summed over its signatures (the largest batch: their maximum), or
    None from a server without them (a checkout from before batching)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/monitoring/prometheus/metrics", timeout=10) as response:
            text = response.read().decode()
    except OSError:
        return None
    counters = collections.Counter()
    for line in text.splitlines():
        if line.startswith("dlsuite_batch"):
            name, value = line.split("{")[0], int(float(line.split()[-1]))
            counters[name] = max(counters[name], value) if name == "dlsuite_batch_largest" else counters[name] + value
    return counters


def start_server(repo, model_dir, port, flags=()):
    """`dlsuite serve` of checkout `repo` in a subprocess, returned once it says it is serving."""
    env = {**os.environ, "PYTHONPATH": str(repo), "TF_CPP_MIN_LOG_LEVEL": "2"}
    errors = tempfile.TemporaryFile()
    server = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "serve", "--model-dir", str(model_dir),
                               "--port", str(port), *flags], cwd=repo, env=env, stdout=subprocess.PIPE, stderr=errors)
    for line in server.stdout:  # "Serving NAME versions [...] at ...": the socket listens, the model is loaded
        if line.startswith(b"Serving"):
            threading.Thread(target=server.stdout.read, daemon=True).start()  # drain the rest
            return server
    errors.seek(0)
    raise SystemExit(f"dlsuite serve exited with {server.wait()}: {errors.read().decode()[-2000:]}")


if __name__ == "__main__":
    main()
