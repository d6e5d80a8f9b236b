"""`dlsuite serve`: TF Serving's REST predict API over an exported SavedModel.

    GET  /v1/models/<name>                         -> {"model_version_status": [...]}
    POST /v1/models/<name>[/versions/<v>]:predict  -> {"predictions": ...} or {"outputs": ...}

Requests use TF Serving's JSON: row format `{"instances": [...]}` or columnar
`{"inputs": {...}}`; bytes inputs (WAV files, ...) as `{"b64": "..."}`. So a
client written for TF Serving works against it, and the same export directory
can be served by TF Serving itself in production.
"""

import base64
import json
import re
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from shared.errors import UsageError

ROUTE = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?(?P<verb>:predict)?$")


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
    if not path.is_dir() or not any(child.name.isdigit() for child in path.iterdir()):
        raise UsageError(
            f"No SavedModel versions found. Received: --model-dir {model_dir}. Expected a folder such as "
            "exports/vision-classification holding version folders 1/, 2/, ..."
        )
    return path


class ModelServer:
    def __init__(self, model_dir):
        import tensorflow as tf

        self.name = model_dir.name
        self.functions = {}
        for version_dir in sorted((p for p in model_dir.iterdir() if p.name.isdigit()), key=lambda p: int(p.name)):
            loaded = tf.saved_model.load(str(version_dir))
            self.functions[int(version_dir.name)] = (loaded, loaded.signatures["serving_default"])
        self.latest = max(self.functions)

    def status(self):
        return {"model_version_status": [{"version": str(version), "state": "AVAILABLE",
                                          "status": {"error_code": "OK", "error_message": ""}}
                                         for version in sorted(self.functions)]}

    def predict(self, body, version=None):
        import numpy as np
        import tensorflow as tf

        version = self.latest if version is None else int(version)
        if version not in self.functions:
            raise KeyError(f"Servable not found for request: version {version} of {self.name}")
        function = self.functions[version][1]
        specs = function.structured_input_signature[1]
        row_format = "instances" in body
        if row_format:
            instances = body["instances"]
            columns = ({name: [row[name] for row in instances] for name in specs} if len(specs) > 1
                       else {next(iter(specs)): instances})
        elif "inputs" in body:
            columns = body["inputs"] if isinstance(body["inputs"], dict) else {next(iter(specs)): body["inputs"]}
        else:
            raise ValueError('Request body must hold "instances" (row format) or "inputs" (columnar format).')
        missing = set(specs) - set(columns)
        if missing:
            raise ValueError(f"Missing inputs {sorted(missing)}. Expected: {sorted(specs)}.")
        tensors = {name: tf.constant(_decode_b64(columns[name]), dtype=spec.dtype) for name, spec in specs.items()}
        outputs = {key: _jsonable(np.asarray(value)) for key, value in function(**tensors).items()}
        if row_format:
            rows = [{key: value[index] for key, value in outputs.items()} for index in range(len(instances))]
            return {"predictions": [next(iter(row.values())) for row in rows] if len(outputs) == 1 else rows}
        return {"outputs": outputs}


def _decode_b64(value):
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [_decode_b64(item) for item in value]
    return value


def _jsonable(array):
    if array.dtype == object or array.dtype.kind == "S":
        return [_jsonable_item(item) for item in array.tolist()] if array.ndim else _jsonable_item(array.item())
    return array.tolist()


def _jsonable_item(item):
    if isinstance(item, list):
        return [_jsonable_item(value) for value in item]
    if isinstance(item, bytes):
        try:
            return item.decode("utf-8")
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(item).decode()}
    return item


def make_handler(server_model):
    class Handler(BaseHTTPRequestHandler):
        def _send(self, code, payload):
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _route(self):
            match = ROUTE.match(self.path)
            if not match or match["name"] != server_model.name:
                self._send(404, {"error": f"Unknown path {self.path}. Expected /v1/models/{server_model.name}[:predict]"})
                return None
            return match

        def do_GET(self):  # noqa: N802 - http.server's naming
            match = self._route()
            if match and not match["verb"]:
                self._send(200, server_model.status())

        def do_POST(self):  # noqa: N802
            match = self._route()
            if not match:
                return
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                self._send(200, server_model.predict(body, match["version"]))
            except KeyError as error:
                self._send(404, {"error": str(error).strip("'\"")})
            except Exception as error:  # noqa: BLE001 - a bad request must not stop the server
                self._send(400, {"error": f"{type(error).__name__}: {error}"})

        def log_message(self, format, *args):  # noqa: A002
            print(f"[serve] {self.address_string()} {format % args}", flush=True)

    return Handler


def serve(model_dir=None, run_id=None, host="127.0.0.1", port=8501, tracking_uri=None):
    if not model_dir and not run_id:
        raise UsageError("Nothing to serve. Received neither --model-dir nor --run-id. Pass one of them.")
    path = resolve_model_dir(model_dir, run_id, tracking_uri)
    model = ModelServer(path)
    httpd = ThreadingHTTPServer((host, port), make_handler(model))
    print(f"Serving {model.name} versions {sorted(model.functions)} at "
          f"http://{host}:{httpd.server_address[1]}/v1/models/{model.name}:predict (Ctrl-C to stop)", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
    return 0
