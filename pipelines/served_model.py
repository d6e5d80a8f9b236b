"""The models `dlsuite serve` answers for: SavedModel versions loaded with their signatures (`ModelServer`), each
request checked against its signature (`pipelines/rest.py`) and run CHUNK_ROWS rows at a time."""

import asyncio
import concurrent.futures
import sys

from shared.errors import UsageError

CHUNK_ROWS = 256  # rows per TensorFlow call: what a large batch adds to the server's memory
PARSERS = 2  # request bodies over INLINE_BYTES decoded at once, on worker threads; the others wait their turn
INLINE_BYTES = 64 << 10  # smaller bodies are decoded and answered on the event loop: a thread hop costs more


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
        answer = lambda: rest.answer_bytes(outputs, rows)  # noqa: E731
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
