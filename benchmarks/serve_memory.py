"""What hostile uploads cost `dlsuite serve` in memory: stalled declared bodies, and one huge text request.

Starts `dlsuite serve` on an export (from `--repo`, so an older checkout's server can be measured the
same way) and reports the server's resident memory (VmRSS, peak VmHWM from /proc) for two cases:

- `stalled`: `--connections` connections each declare a body of `--declared-mib` MiB and send one byte;
  RSS is read while they are held.
- `text` (an export whose serving_default takes strings): one request of `--strings` strings of
  `--string-kb` KB each; its status, seconds, and the RSS peak and after.

    python -m benchmarks.serve_memory --model-dir exports/nlp-text_classification --case stalled --case text
"""

import argparse
import json
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from benchmarks.serve_load import REPO, start_server


def memory_mb(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as status:
        return int(next(line for line in status if line.startswith(field + ":")).split()[1]) / 1024


def stalled(port, name, pid, connections, declared_mib):
    head = (f"POST /v1/models/{name}:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {declared_mib << 20}\r\n\r\n{{").encode()
    before = memory_mb(pid)
    sockets = [socket.create_connection(("127.0.0.1", port), timeout=60) for _ in range(connections)]
    for connection in sockets:
        connection.sendall(head)
    time.sleep(3)
    held = memory_mb(pid)
    for connection in sockets:
        connection.close()
    print(f"stalled: {connections} connections x {declared_mib} MiB declared, 1 byte sent: server RSS "
          f"{before:.0f} MB before, {held:.0f} MB while held ({held - before:+.0f} MB)")


def text(port, name, pid, strings, string_kb):
    body = json.dumps({"instances": ["spam win prize " * (string_kb * 1000 // 15)] * strings}).encode()
    before = memory_mb(pid)
    start = time.monotonic()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models/{name}:predict", data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    seconds = time.monotonic() - start
    time.sleep(1)
    print(f"text: one request of {strings} strings x {string_kb} KB ({len(body) / 1e6:.1f} MB): HTTP {status} in "
          f"{seconds:.1f} s; server RSS {before:.0f} MB before, peak {memory_mb(pid, 'VmHWM'):.0f} MB, "
          f"{memory_mb(pid):.0f} MB after")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--repo", default=str(REPO), help="checkout whose `dlsuite serve` to measure")
    parser.add_argument("--case", action="append", choices=("stalled", "text"), required=True)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--declared-mib", type=int, default=31)
    parser.add_argument("--strings", type=int, default=500)
    parser.add_argument("--string-kb", type=int, default=60)
    parser.add_argument("--port", type=int, default=8766)
    args = parser.parse_args(argv)
    name = Path(args.model_dir).name
    server = start_server(args.repo, args.model_dir, args.port)
    try:
        for case in args.case:
            if case == "stalled":
                stalled(args.port, name, server.pid, args.connections, args.declared_mib)
            else:
                text(args.port, name, server.pid, args.strings, args.string_kb)
    finally:
        server.terminate()
        server.wait(timeout=60)
    print("command: python -m benchmarks.serve_memory " + " ".join(argv or sys.argv[1:]))


if __name__ == "__main__":
    main()
