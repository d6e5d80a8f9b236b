"""`dlsuite serve`: TF Serving's REST API over the versions of an export folder, or over a registered
model's version that follows an alias such as `champion` (`pipelines/champion.py`); the loaded models and their
signatures are `pipelines/served_model.py`.

    GET  /v1/models/<name>[/versions/<v>]           -> {"model_version_status": [...]}
    GET  /v1/models/<name>[/versions/<v>]/metadata  -> every signature's inputs and outputs
    POST /v1/models/<name>[/versions/<v>]:predict   -> {"predictions": ...} or {"outputs": ...}

Requests are TF Serving's JSON (`pipelines/rest.py`): a TF Serving client works against it, and the
export folder serves in TF Serving too. No request can take the server down: each is checked against
its signature before TensorFlow sees it (400), large batches run CHUNK_ROWS rows at a time, and
concurrent small ones share one TensorFlow call (`pipelines/batching.py`). The HTTP side is a
Starlette app on uvicorn (`pipelines/http_app.py`): bodies over --max-body-mb get 413 unread, a
client stalled beyond --read-timeout is dropped, and memory is bounded by design.
"""

import argparse
import contextlib
import errno
import os
import re
import socket
import sys
from pathlib import Path

from pipelines.served_model import ModelServer
from shared.errors import UsageError

MIB = 1 << 20
SWITCH_INTERVAL = 0.0005  # seconds a thread holds the GIL while another waits for it (Python's default: 0.005)


def port_number(text):
    """argparse type of --port: an integer from 1 to 65535."""
    if not (text.isascii() and text.isdigit() and len(text) <= 5 and 1 <= int(text) <= 65535):
        raise argparse.ArgumentTypeError(f"Invalid port. Received: --port {text}. Expected an integer from 1 to 65535.")
    return int(text)


def positive_number(flag):
    """argparse type of an option such as --read-timeout: a finite number above 0."""

    def parse(text):
        value = float(text) if re.fullmatch(r"\d+\.?\d*|\.\d+", text) else 0
        if not 0 < value < float("inf"):
            raise argparse.ArgumentTypeError(f"Invalid {flag}. Received: {flag} {text}. Expected a number above 0.")
        return value

    return parse


def positive_integer(flag):
    """argparse type of an option such as --max-batch-size: an integer from 1 to 1,000,000."""

    def parse(text):
        if not (text.isascii() and text.isdigit() and len(text) <= 7 and 1 <= int(text) <= 1_000_000):
            raise argparse.ArgumentTypeError(f"Invalid {flag}. Received: {flag} {text}. "
                                             "Expected an integer from 1 to 1000000.")
        return int(text)

    return parse


def resolve_model_dir(model_dir=None, run_id=None, tracking_uri=None):
    """The `<root>/<name>` folder holding integer versions."""
    if run_id:
        from shared import tracking

        tracking.setup(tracking_uri)
        export_dir = tracking.get_run(run_id).data.tags.get("dlsuite.export_dir")
        if not export_dir:
            raise UsageError(f"Run {run_id} has no export. Received: --run-id {run_id}. Train it to completion first.")
        return Path(export_dir).parent
    path = Path(model_dir)
    if not path.is_dir() or not any(child.is_dir() and child.name.isdigit() for child in path.iterdir()):
        raise UsageError(
            f"No SavedModel versions found. Received: --model-dir {model_dir}. Expected a folder such as "
            "exports/vision-classification holding version folders 1/, 2/, ..."
        )
    return path


def _bind(host, port):
    """A listening socket (served once the model is loaded); UsageError if it cannot be had."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family, backlog=128)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise UsageError(f"Port {port} on {host} is in use. Received: --port {port}. "
                             "Pick another port with --port.") from None
        raise UsageError(f"Cannot listen on {host}:{port} ({getattr(error, 'strerror', None) or error}). Received: "
                         f"--host {host} --port {port}. Expected an address of this machine and a free port.") from None


def _unmap_large_buffers():
    """Fix glibc's mmap threshold at 1 MiB. By default it rises to the size of the largest buffer freed
    (up to 32 MiB), so the buffers of later large requests come from the heap and stay resident."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").mallopt(-3, 1 << 20)  # -3: M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass  # not glibc: nothing to tune


def serve(model_dir=None, run_id=None, host="127.0.0.1", port=8501, tracking_uri=None, max_body_mb=32,
          read_timeout=30.0, max_batch_size=64, batch_timeout_ms=5.0, max_connections=256, workers=1, model_uri=None,
          poll_seconds=10.0):
    given = [flag for flag, value in (("--model-dir", model_dir), ("--run-id", run_id), ("--model", model_uri)) if value]
    if not given:
        raise UsageError("Nothing to serve. Received neither --model-dir nor --run-id nor --model. Pass one of them.")
    if len(given) > 1:
        raise UsageError(f"Say what to serve once. Received: {' and '.join(given)}. Expected one of them. Fix: e.g. "
                         "--model models:/vision-classification@champion alone.")
    if model_uri:
        from pipelines.champion import model_loader

        load_model = model_loader(model_uri, tracking_uri, poll_seconds)
    else:
        path = resolve_model_dir(model_dir, run_id, tracking_uri)
        load_model = lambda: ModelServer(path)  # noqa: E731
    listening = _bind(host, port)  # before loading: a taken port fails at once
    _unmap_large_buffers()
    # The event loop gives up the GIL at every socket call; with the default 5 ms interval a TensorFlow thread
    # keeps it that long each time, and the loop (every request's parsing and answer) crawls.
    sys.setswitchinterval(SWITCH_INTERVAL)
    settings = dict(max_body_bytes=int(max_body_mb * MIB), read_timeout=read_timeout, max_batch_size=max_batch_size,
                    batch_timeout_ms=batch_timeout_ms, max_connections=max_connections)
    with listening:
        if workers == 1:
            _serve_one(load_model, listening, **settings)
            return 0
        return _prefork(workers, lambda: _serve_one(load_model, listening, **settings))


def _serve_one(load_model, listening, *, max_body_bytes, read_timeout, max_batch_size, batch_timeout_ms, max_connections):
    """Load the model and answer on `listening` until SIGINT or SIGTERM."""
    import uvicorn

    from pipelines.batching import Batcher
    from pipelines.http_app import HEAD_BYTES, build_app, json_errors_protocol

    model = load_model()
    batcher = Batcher(max_batch_size=max_batch_size, timeout_seconds=batch_timeout_ms / 1000)
    config = uvicorn.Config(
        build_app(model, batcher, max_body_bytes, read_timeout),
        http=json_errors_protocol(read_timeout, max_connections), h11_max_incomplete_event_size=HEAD_BYTES,
        limit_concurrency=max_connections + 1,  # uvicorn's own cap (plain-text 503), behind ours (JSON)
        timeout_keep_alive=read_timeout, timeout_graceful_shutdown=read_timeout, lifespan="off",
        log_level="warning", access_log=False)
    host, port = listening.getsockname()[:2]
    print(f"Serving {model.name} versions {sorted(model.versions)} at "
          f"http://{host}:{port}/v1/models/{model.name}:predict (Ctrl-C to stop)", flush=True)
    uvicorn.Server(config).run(sockets=[listening])


def _prefork(workers, serve_one):
    """`workers` processes forked before TensorFlow loads, each its own model and event loop on the shared socket
    (the kernel spreads the connections); SIGTERM and SIGINT are passed on to them. Returns the worst exit code."""
    import signal

    children = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # the worker: never return into the parent's code
            code = 1
            try:
                serve_one()
                code = 0
            except KeyboardInterrupt:
                code = 0
            except UsageError as error:
                print(f"dlsuite: error: {error}", file=sys.stderr, flush=True)
                code = 2
            finally:
                os._exit(code)
        children.append(pid)

    received = []

    def forward(signum, _frame):
        received.append(signum)
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    codes = [os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]) for child in children]
    if received:  # end as one uvicorn process does: by the signal it was stopped with, once the workers are done
        signal.signal(received[0], signal.SIG_DFL)
        os.kill(os.getpid(), received[0])
    return max(codes)
