"""`dlsuite ui`: the MLflow UI on the suite's tracking store."""

import subprocess
import sys

from shared import tracking


def ui(port=5000, host="127.0.0.1", tracking_uri=None):
    uri = tracking.resolve_tracking_uri(tracking_uri)
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port),
               "--workers", "1"]
    if uri.startswith("sqlite:"):
        command += ["--default-artifact-root", (tracking.store_home(uri) / "artifacts").as_uri()]
    print(f"MLflow UI for {uri} at http://{host}:{port} (Ctrl-C to stop)", flush=True)
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 0
