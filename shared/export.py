"""SavedModel export in TF Serving's `<root>/<name>/<version>/` layout, and its verification.

Each task declares its endpoints explicitly (`shared.app.Endpoint`: a function
and named TensorSpecs); nothing is guessed from `model.input_shape`.
After writing, the SavedModel is reloaded in a fresh Python process and its
`serving_default` outputs are compared with the in-memory model's.

`python -m shared.export verify DIR CASES.pickle ATOL` is that fresh-process check, for every\nsignature the task gives examples for (`Task.signature_examples`).
"""

import json
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def next_version_dir(root, name):
    """`root/name/N` with N one more than the highest existing integer version (TF Serving picks the highest)."""
    base = Path(root) / name
    versions = [int(path.name) for path in base.glob("*") if path.is_dir() and path.name.isdigit()]
    return base / str(max(versions, default=0) + 1)


def write_saved_model(model, endpoints, path):
    import keras

    if "serving_default" not in endpoints:
        raise ValueError(f"A task must define a 'serving_default' endpoint. Received: {sorted(endpoints)}.")
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, endpoint in endpoints.items():
        archive.add_endpoint(name=name, fn=endpoint.fn, input_signature=endpoint.input_signature)
    archive.write_out(str(path), verbose=False)
    return Path(path)


def serve_in_memory(endpoint):
    """Call an endpoint the way the SavedModel signature is called: keyword inputs, dict of numpy out."""
    import tensorflow as tf

    function = tf.function(endpoint.fn, input_signature=endpoint.input_signature)

    def predict(**inputs):
        outputs = function(**{name: tf.convert_to_tensor(value) for name, value in inputs.items()})
        return {key: _to_numpy(value) for key, value in outputs.items()}

    return predict


def _to_numpy(tensor):
    value = tensor.numpy()
    return value.astype(bytes) if value.dtype == object else value


def load_serving(path, signature="serving_default"):
    """Reload a SavedModel and return its signature as `predict(**numpy inputs) -> dict of numpy`."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    function = loaded.signatures[signature]

    def predict(**inputs):
        outputs = function(**{name: tf.convert_to_tensor(value) for name, value in inputs.items()})
        return {key: _to_numpy(value) for key, value in outputs.items()}

    predict.loaded = loaded  # keep the SavedModel alive as long as the function
    return predict


def compare(expected, actual, atol):
    """Max absolute difference per output; raises ValueError on a mismatch."""
    report = {}
    for key, want in expected.items():
        if key not in actual:
            raise ValueError(f"Export check: output {key!r} missing from the SavedModel. Got: {sorted(actual)}.")
        got = actual[key]
        if want.dtype.kind in "SUO":
            if not np.array_equal(want.astype(bytes), got.astype(bytes)):
                raise ValueError(f"Export check: output {key!r} differs from the Keras model's.")
            report[key] = 0.0
            continue
        difference = float(np.max(np.abs(want.astype(np.float64) - got.astype(np.float64)))) if want.size else 0.0
        if difference > atol:
            raise ValueError(f"Export check: output {key!r} differs by {difference:.3g} > atol {atol}.")
        report[key] = difference
    return report


def verify_in_fresh_process(path, cases, atol=1e-5):
    """Reload `path` in a new Python process and call each signature of `cases` on its inputs.

    `cases`: `{signature: (inputs, expected outputs)}`, dicts of numpy arrays. Returns
    `{signature: {output: max abs difference}}`; raises RuntimeError on any mismatch.
    """
    with tempfile.TemporaryDirectory() as tmp:
        # Pickle, not npz: bytes inputs (WAV files) may end in NUL bytes, which numpy's "S" arrays drop.
        cases_path = Path(tmp) / "cases.pickle"
        cases_path.write_bytes(pickle.dumps(cases))
        result = subprocess.run(
            [sys.executable, "-m", "shared.export", "verify", str(path), str(cases_path), str(atol)],
            capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1],
        )
    if result.returncode != 0:
        raise RuntimeError(f"SavedModel verification failed for {path}:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _verify_main(path, cases_path, atol):
    cases = pickle.loads(Path(cases_path).read_bytes())  # written by verify_in_fresh_process, in a private tmp dir
    report = {signature: compare(expected, load_serving(path, signature)(**inputs), float(atol))
              for signature, (inputs, expected) in cases.items()}
    print(json.dumps(report))


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] != "verify":
        sys.exit("usage: python -m shared.export verify SAVED_MODEL_DIR CASES.pickle ATOL")
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _verify_main(*sys.argv[2:])
