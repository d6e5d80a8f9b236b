"""`dlsuite serve`: TF Serving's REST API over the versions of an export folder, or over a registered
model's version that follows an alias such as `champion` (`pipelines/champion.py`).

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
import asyncio
import concurrent.futures
import contextlib
import errno
import os
import json
import re
import socket
import sys
from pathlib import Path

from shared.errors import UsageError

CHUNK_ROWS = 256  # rows per TensorFlow call: what a large batch adds to the server's memory
PARSERS = 2  # request bodies over INLINE_BYTES decoded at once, on worker threads; the others wait their turn
INLINE_BYTES = 64 << 10  # smaller bodies are decoded and answered on the event loop: a thread hop costs more
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


def load_versions(model_dir):
    """`{version: (SavedModel, {signature name: Signature})}` of every version that loads; one warning for the rest."""
    from shared.export import versions

    complete, loaded, skipped = set(versions(model_dir)), {}, []
    for folder in sorted(model_dir.iterdir(), key=lambda child: child.name.zfill(20)):
        if not (folder.is_dir() and folder.name.isdigit()):
            continue  # `.incomplete-*` staging folders, files
        if int(folder.name) not in complete:
            skipped.append(f"{folder.name} (no saved_model.pb)")
            continue
        try:
            loaded[int(folder.name)] = load_version(folder)
        except Exception as error:  # noqa: BLE001 - one broken version must not hide the others
            reason = " ".join(f"{type(error).__name__}: {error}".split())[:200]
            skipped.append(f"{folder.name} (does not load: {reason})")
    if skipped:
        print(f"dlsuite: warning: skipping incomplete versions of {model_dir}: {'; '.join(skipped)}",
              file=sys.stderr, flush=True)
    if not loaded:
        raise UsageError(f"No loadable SavedModel version in {model_dir}. Received: {len(skipped)} incomplete version "
                         "folders. Expected a version folder whose saved_model.pb loads: write one with "
                         "`dlsuite export --run-id RUN_ID`.")
    return loaded


def load_version(folder):
    """`(SavedModel, {signature name: Signature})` of one version folder."""
    from shared.export import load_saved_model

    saved_model = load_saved_model(folder)
    return saved_model, {name: Signature(name, function) for name, function in saved_model.signatures.items()}


class Signature:
    """One SavedModel signature, called on checked numpy arrays, CHUNK_ROWS rows at a time when it can be."""

    def __init__(self, name, function):
        self.name, self.function = name, function
        self.inputs, self.outputs = function.structured_input_signature[1], function.structured_outputs
        self.specs = {name: _spec(name, tensor_spec) for name, tensor_spec in self.inputs.items()}
        # A scalar input (a seed: splitting would change the draws) or an output that is not one per row
        # ties the rows together: such signatures run whole.
        self.chunked = bool(self.specs) and all(spec.batched for spec in self.specs.values()) and all(
            output.shape.rank and output.shape[0] is None for output in self.outputs.values())

    def __call__(self, arrays):
        import numpy as np

        total = len(next(iter(arrays.values()))) if self.chunked else 0
        if total <= CHUNK_ROWS:
            return self._run(arrays)
        parts = [self._run({name: array[start:start + CHUNK_ROWS] for name, array in arrays.items()})
                 for start in range(0, total, CHUNK_ROWS)]
        return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}

    def _run(self, arrays):
        import tensorflow as tf

        from pipelines.rest import model_refusal

        try:
            outputs = self.function(**{name: tf.constant(array) for name, array in arrays.items()})
        except tf.errors.InvalidArgumentError as error:  # a value the model itself refuses
            raise model_refusal(error.message) from None
        return {key: value.numpy() for key, value in outputs.items()}

    def describe(self):
        """TF Serving's SignatureDef in JSON: the dtype and shape of every input and output."""
        return {"inputs": {name: _tensor_info(spec) for name, spec in self.inputs.items()},
                "outputs": {name: _tensor_info(spec) for name, spec in self.outputs.items()},
                "method_name": "tensorflow/serving/predict"}


def _spec(name, tensor_spec):
    import numpy as np

    from pipelines.rest import Spec

    dtype, shape = tensor_spec.dtype, tensor_spec.shape
    kind = ("string" if dtype.name == "string" else "bool" if dtype.is_bool else "int" if dtype.is_integer
            else "float" if dtype.is_floating else None)
    numeric = kind in ("int", "float")
    return Spec(name, None if shape.rank is None else tuple(shape.as_list()), kind,
                np.dtype(dtype.as_numpy_dtype) if numeric else dtype.name, *((dtype.min, dtype.max) if numeric else ()))


def _tensor_info(tensor_spec):
    from tensorflow.core.framework import types_pb2

    shape = tensor_spec.shape
    dims = [{"size": str(-1 if size is None else size), "name": ""} for size in shape.as_list()] if shape.rank else []
    return {"dtype": types_pb2.DataType.Name(tensor_spec.dtype.as_datatype_enum),
            "tensor_shape": {"dim": dims, "unknown_rank": shape.rank is None}}


class ModelServer:
    """Every loaded version of one model; answers status, metadata and predict requests. `versions` is replaced
    whole (`switch`), never changed in place: a request reads it once and has a consistent view."""

    def __init__(self, model_dir=None, *, name=None, versions=None):
        self.name = name or model_dir.name
        self.versions = versions or load_versions(model_dir)
        self.parsers = concurrent.futures.ThreadPoolExecutor(PARSERS, thread_name_prefix="parse")

    def signatures(self, version=None):
        from pipelines.rest import RequestError

        versions = self.versions
        version = max(versions) if version is None else int(version)
        if version not in versions:
            raise RequestError(f"Servable not found for request: version {version} of {self.name}. "
                               f"Available versions: {sorted(versions)}.", status=404)
        return version, versions[version][1]

    def switch(self, version, loaded):
        """Serve `loaded` (a `load_version` result) as the only version, from the next request on."""
        self.versions = {version: loaded}

    def status(self, version=None):
        shown = sorted(self.versions) if version is None else [self.signatures(version)[0]]
        return {"model_version_status": [{"version": str(number), "state": "AVAILABLE",
                                          "status": {"error_code": "OK", "error_message": ""}} for number in shown]}

    def metadata(self, version=None):
        number, signatures = self.signatures(version)
        return {"model_spec": {"name": self.name, "signature_name": "", "version": str(number)},
                "metadata": {"signature_def": {"signature_def": {name: signature.describe()
                                                                 for name, signature in signatures.items()}}}}

    async def predict(self, data, version, batcher):
        """The JSON answer (bytes) to one request body; RequestError for anything the client must fix."""
        from pipelines import rest

        inline = len(data) <= INLINE_BYTES
        loop = asyncio.get_running_loop()
        prepare = lambda: self._prepare(rest.parse_body(data), self.signatures(version)[1])  # noqa: E731
        signature, arrays, rows = prepare() if inline else await loop.run_in_executor(self.parsers, prepare)
        # Here the parsed JSON (several times the arrays' size) is already freed.
        outputs = await batcher(signature, arrays)
        answer = lambda: json.dumps(rest.encode(outputs, rows)).encode()  # noqa: E731
        return answer() if inline else await loop.run_in_executor(self.parsers, answer)

    @staticmethod
    def _prepare(body, signatures):
        from pipelines import rest

        name = body.get("signature_name") or "serving_default"
        if name not in signatures:
            raise rest.RequestError(f"Unknown signature_name. Received: signature_name={rest.preview(name)}. "
                                    f"Expected one of: {sorted(signatures)}.")
        columns, rows = rest.gather_columns(body, signatures[name].specs)
        return signatures[name], rest.to_arrays(columns, signatures[name].specs), rows


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
