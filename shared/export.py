"""SavedModel export in TF Serving's `<root>/<name>/<version>/` layout, its verification, and serving.

Each task declares its endpoints explicitly (`shared.app.Endpoint`: a function
and named TensorSpecs); nothing is guessed from `model.input_shape`.

A version is written atomically: into a hidden `.incomplete-<version>-<pid>` folder beside the
versions, verified there, then renamed into place, so a killed export never leaves a half-written
`<version>/` behind (TF Serving and `dlsuite serve` only look at integer folder names). Each
version carries `assets.extra/dlsuite.json` (app, task, config, run id): an export describes itself,
so `dlsuite evaluate --model-dir` needs no MLflow run.

After writing, the SavedModel is reloaded in a fresh Python process and every signature the task
gives examples for is compared with the in-memory endpoints:
`python -m shared.export verify DIR CASES.pickle ATOL` is that check.
"""

import collections.abc
import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from shared.errors import UsageError

METADATA = Path("assets.extra") / "dlsuite.json"
INCOMPLETE = ".incomplete-"


# === Writing versions ===


def versions(base):
    """The complete integer versions under `base` (a folder with a `saved_model.pb`), sorted."""
    base = Path(base)
    if not base.is_dir():
        return []
    return sorted(int(path.name) for path in base.iterdir()
                  if path.is_dir() and path.name.isdigit() and (path / "saved_model.pb").is_file())


def resolve_version_dir(model_dir):
    """A version folder: `model_dir` itself, or the highest complete version under it."""
    path = Path(model_dir)
    if (path / "saved_model.pb").is_file():
        return path
    found = versions(path)
    if not found:
        raise UsageError(
            f"No SavedModel found. Received: --model-dir {model_dir}. Expected a version folder holding "
            "saved_model.pb (exports/vision-classification/1) or the folder of versions above it."
        )
    return path / str(found[-1])


def next_version_dir(root, name):
    """`root/name/N` with N one more than the highest existing integer folder (TF Serving picks the highest)."""
    base = Path(root) / name
    taken = [int(path.name) for path in base.glob("*") if path.name.isdigit()]
    return base / str(max(taken, default=0) + 1)


def remove_orphans(base):
    """Delete `.incomplete-*` folders left by killed exports (their process is gone); return their names."""
    removed = []
    for path in Path(base).glob(f"{INCOMPLETE}*"):
        pid = path.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path.name)
    return removed


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_saved_model(model, endpoints, path, metadata=None):
    """Write the SavedModel (every endpoint a signature) and `assets.extra/dlsuite.json` into `path`."""
    import keras

    if "serving_default" not in endpoints:
        raise ValueError(f"A task must define a 'serving_default' endpoint. Received: {sorted(endpoints)}.")
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, endpoint in endpoints.items():
        archive.add_endpoint(name=name, fn=endpoint.fn, input_signature=endpoint.input_signature)
    archive.write_out(str(path), verbose=False)
    (Path(path) / METADATA).parent.mkdir(exist_ok=True)
    (Path(path) / METADATA).write_text(json.dumps(metadata or {}, indent=2, default=str))
    return Path(path)


def export_version(model, endpoints, root, name, metadata=None, check=None):
    """Write a new version of `root/name` atomically: a hidden folder, `check(folder)`, then a rename.

    Returns `(version_dir, check's result)`. On any failure the hidden folder is removed and no
    version appears.
    """
    base = (Path(root) / name).resolve()  # absolute: the fresh-process check runs in another directory
    base.mkdir(parents=True, exist_ok=True)
    remove_orphans(base)
    staging = base / f"{INCOMPLETE}{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        write_saved_model(model, endpoints, staging, metadata)
        result = check(staging) if check else None
        while True:
            target = next_version_dir(base.parent, name)
            try:
                staging.rename(target)  # atomic on one file system; fails if another writer took the number
                break
            except OSError:
                if not target.exists():
                    raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target.resolve(), result


def read_metadata(version_dir):
    """The `dlsuite.json` an export carries ({} for a SavedModel not written by dlsuite)."""
    path = Path(version_dir) / METADATA
    return json.loads(path.read_text()) if path.is_file() else {}


# === Calling endpoints and SavedModels the same way ===


class Serving(collections.abc.Mapping):
    """Every signature's `predict(**numpy inputs) -> dict of numpy outputs`, by signature name.

    `serving(**inputs)` calls `serving_default`; `serving.batched(...)` splits large inputs.
    `where` says what is served ("in-memory" or the SavedModel's folder).
    """

    def __init__(self, predictors, where):
        self._predictors = dict(predictors)
        self.where = str(where)

    def __getitem__(self, signature):
        if signature not in self._predictors:
            raise KeyError(f"No signature {signature!r}. Available: {sorted(self._predictors)}.")
        return self._predictors[signature]

    def __iter__(self):
        return iter(self._predictors)

    def __len__(self):
        return len(self._predictors)

    def __call__(self, **inputs):
        return self["serving_default"](**inputs)

    def batched(self, batch_size=256, signature="serving_default", **inputs):
        """Call `signature` on slices of `batch_size` rows of every input; concatenate each output."""
        predict = self[signature]
        total = len(next(iter(inputs.values())))
        outputs = [predict(**{key: value[start:start + batch_size] for key, value in inputs.items()})
                   for start in range(0, total, batch_size)]
        return {key: np.concatenate([output[key] for output in outputs]) for key in outputs[0]}


def _predictor(function):
    import tensorflow as tf

    def predict(**inputs):
        outputs = function(**{name: tf.convert_to_tensor(value) for name, value in inputs.items()})
        return {key: _to_numpy(value) for key, value in outputs.items()}

    return predict


def serve_in_memory(endpoints):
    """The in-memory endpoints, called the way their SavedModel signatures are."""
    import tensorflow as tf

    return Serving({name: _predictor(tf.function(endpoint.fn, input_signature=endpoint.input_signature))
                    for name, endpoint in endpoints.items()}, "in-memory")


def _to_numpy(tensor):
    value = tensor.numpy()
    return value.astype(bytes) if value.dtype == object else value


def register_custom_ops():
    """Register the TensorFlow ops that exported graphs may use beyond core TF: tensorflow-text's
    (keras-hub tokenizers). Call it before loading any SavedModel."""
    try:
        import tensorflow_text  # noqa: F401 - importing registers the ops
    except ImportError:
        pass


def load_saved_model(path):
    """`tf.saved_model.load` after `register_custom_ops`."""
    import tensorflow as tf

    register_custom_ops()
    return tf.saved_model.load(str(path))


def load_serving(path):
    """Reload a SavedModel as a `Serving` of all its signatures."""
    loaded = load_saved_model(path)
    serving = Serving({name: _predictor(function) for name, function in loaded.signatures.items()}, path)
    serving.loaded = loaded  # keep the SavedModel alive as long as the predictors
    return serving


# === Randomness as an input ===


def seed_spec(name="seed"):
    """The TensorSpec of a generating endpoint's seed: a scalar int32 chosen by the client."""
    import tensorflow as tf

    return tf.TensorSpec([], tf.int32, name=name)


def stateless_seed(seed, stream=0):
    """A `[2]` int32 seed for `tf.random.stateless_*` from a client's scalar seed (and a stream number)."""
    import tensorflow as tf

    return tf.stack([tf.cast(seed, tf.int32), tf.constant(stream, tf.int32)])


# === Verification ===


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
        if want.shape != got.shape:
            raise ValueError(f"Export check: output {key!r} has shape {got.shape}, expected {want.shape}.")
        difference = float(np.max(np.abs(want.astype(np.float64) - got.astype(np.float64)))) if want.size else 0.0
        if not difference <= atol:  # also catches NaN
            raise ValueError(f"Export check: output {key!r} differs by {difference:.3g} > atol {atol}.")
        report[key] = difference
    return report


def verify_in_fresh_process(path, cases, atol=1e-5):
    """Reload `path` in a new Python process and call each signature of `cases` on its inputs.

    `cases`: `{signature: (inputs, expected outputs)}`, dicts of numpy arrays. Returns
    `{signature: {output: max abs difference}}`; raises `shared.errors.ExportCheckFailed` on any mismatch.
    """
    with tempfile.TemporaryDirectory() as tmp:
        # Pickle, not npz: bytes inputs (WAV files) may end in NUL bytes, which numpy's "S" arrays drop.
        # It is written here and read back only by the child below, inside this private folder.
        cases_path = Path(tmp) / "cases.pickle"
        payload = pickle.dumps(cases)
        cases_path.write_bytes(payload)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")}
        result = subprocess.run(
            [sys.executable, "-m", "shared.export", "verify", str(Path(path).resolve()), str(cases_path), str(atol),
             hashlib.sha256(payload).hexdigest()],
            capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1], env=env,
        )
    if result.returncode != 0:
        from shared.errors import ExportCheckFailed

        raise ExportCheckFailed(f"The SavedModel reloaded in a fresh process did not answer like the model "
                                f"in memory, so no version was published. Received: {path}. Its check said:\n"
                                f"{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _verify_main(path, cases_path, atol, sha256):
    payload = Path(cases_path).read_bytes()
    if hashlib.sha256(payload).hexdigest() != sha256:  # a pickle is opened only once its checksum matches
        sys.exit(f"{cases_path}: SHA-256 differs from the one its writer passed; refusing to unpickle it.")
    cases = pickle.loads(payload)
    serving = load_serving(path)
    report = {signature: compare(expected, serving[signature](**inputs), float(atol))
              for signature, (inputs, expected) in cases.items()}
    print(json.dumps(report))


if __name__ == "__main__":
    if len(sys.argv) != 6 or sys.argv[1] != "verify":
        sys.exit("usage: python -m shared.export verify SAVED_MODEL_DIR CASES.pickle ATOL SHA256")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    _verify_main(*sys.argv[2:])
