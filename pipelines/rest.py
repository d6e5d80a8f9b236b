"""TF Serving's REST predict format, without TensorFlow: check a request, encode the answer.

A JSON request becomes numpy arrays of exactly its signature's dtypes and shapes, or a
`RequestError` (HTTP 400) naming the input, what was received and what was expected: TensorFlow
never sees a malformed request (some kernels abort the whole process on a shape they do not expect).

    parse_body(data) -> request; gather_columns(request, specs) -> ({input: JSON value}, rows);
    to_arrays(columns, specs) -> {input: array}; encode(outputs, rows) -> the answer; answer_bytes -> its JSON
"""

import base64
import binascii
import dataclasses
import json
import re

import numpy as np

PREVIEW_CHARS = 100  # error messages quote at most this much of a request
KEYS = ("signature_name", "instances", "inputs")
FORMATS = 'Expected {"instances": [...]} (row format) or {"inputs": ...} (columnar format)'


class RequestError(ValueError):
    """A request the client must fix; `status` is the HTTP code of the answer, `headers` its extra headers."""

    def __init__(self, message, status=400, **headers):
        super().__init__(message)
        self.status = status
        self.headers = headers


@dataclasses.dataclass(frozen=True)
class Spec:
    """One signature input. `shape`: a tuple (None: any size), or None for any rank. `kind`: "int", "float",
    "bool", "string", or None (a dtype JSON cannot carry). `low`, `high`: the range of a numeric dtype."""

    name: str
    shape: tuple | None
    kind: str | None
    dtype: object  # a numpy dtype, or the TensorFlow dtype's name
    low: float | None = None
    high: float | None = None

    @property
    def batched(self):
        return bool(self.shape) and self.shape[0] is None

    def describe(self):
        dims = "of any shape" if self.shape is None else "[" + ", ".join(map(str, self.shape)) + "]"
        return f"{self.dtype} {dims}" + (f", values from {self.low} to {self.high}" if self.kind == "int" else "")


def preview(value, limit=PREVIEW_CHARS):
    """`value` as JSON, cut after `limit` characters: a request may hold megabytes."""
    text = ""
    try:
        for token in _tokens(value, limit):
            text += token
            if len(text) > limit:
                return text[:limit] + "..."
    except RecursionError:
        return text[:limit] + "... (nested too deeply)"
    return text


def _tokens(value, limit):
    if not isinstance(value, (list, dict)):
        yield json.dumps(value[:limit + 1] if isinstance(value, (str, bytes)) else value, default=repr)
        return
    named = isinstance(value, dict)
    yield "{" if named else "["
    for index, (key, item) in enumerate(value.items() if named else enumerate(value)):
        yield (", " if index else "") + (json.dumps(str(key)[:limit]) + ": " if named else "")
        yield from _tokens(item, limit)
    yield "}" if named else "]"


# === Requests ===


def parse_body(data):
    """The request object of a JSON body (bytes); RequestError for anything else."""
    try:
        body = json.loads(data)
    except (ValueError, RecursionError) as error:  # JSONDecodeError, UnicodeDecodeError
        received = bytes(data[:PREVIEW_CHARS]).decode("utf-8", "replace")
        raise RequestError(f"The request body is not valid JSON ({type(error).__name__}: {str(error)[:200]}). "
                           f"Received: {received!r}. {FORMATS}.") from None
    if not isinstance(body, dict):
        raise RequestError(f"The request body must be a JSON object. Received: {preview(body)}. {FORMATS}.")
    if any(key not in KEYS for key in body) or ("instances" in body) == ("inputs" in body):
        raise RequestError(f'A request holds exactly one of "instances" or "inputs", and no keys but {list(KEYS)}. '
                           f"Received keys: {preview(list(body))}. {FORMATS}.")
    if not isinstance(body.get("signature_name", ""), str):
        raise RequestError(f'"signature_name" must be a string. Received: {preview(body["signature_name"])}.')
    return body


def gather_columns(body, specs):
    """`{input name: JSON value}` of a request, and its number of instances (None in columnar format)."""
    if "instances" not in body:
        if _is_named(body["inputs"]):
            return _check_names(body["inputs"], specs, '"inputs"'), None
        return {_only_input(specs, '"inputs"'): body["inputs"]}, None
    instances = body["instances"]
    if not isinstance(instances, list) or not instances:
        raise RequestError(f'"instances" must be a non-empty list, one entry per example. '
                           f"Received: {preview(instances)}.")
    named = [_is_named(row) for row in instances]
    if any(named) != all(named):
        raise RequestError(f"Either every instance is an object of named inputs or none is. "
                           f"Received: {preview(instances)}.")
    scalars = [name for name, spec in specs.items() if spec.shape == ()]
    if scalars:
        raise RequestError(f"Inputs {scalars} are scalars (shape []), which the row format cannot send: it adds a "
                           f'batch dimension to every input. Received: "instances". Expected the columnar format: '
                           f'{{"inputs": {{{", ".join(json.dumps(name) + ": ..." for name in specs)}}}}}.')
    if not named[0]:
        return {_only_input(specs, '"instances"'): instances}, len(instances)
    rows = [_check_names(row, specs, "an instance") for row in instances]
    return {name: [row[name] for row in rows] for name in specs}, len(instances)


def _is_named(value):
    return isinstance(value, dict) and list(value) != ["b64"]


def _only_input(specs, where):
    if len(specs) != 1:
        raise RequestError(f"The signature has {len(specs)} inputs, so a request names them. Received: unnamed values "
                           f"in {where}. Expected objects with the keys {list(specs)}.")
    return next(iter(specs))


def _check_names(given, specs, where):
    missing, unknown = [name for name in specs if name not in given], [name for name in given if name not in specs]
    if missing or unknown:
        raise RequestError(f"The inputs of {where} do not match the signature's. Received: {preview(list(given))} "
                           f"(missing {missing}, unknown {preview(unknown)}). Expected: {list(specs)}.")
    return given


# === Arrays ===


def to_arrays(columns, specs):
    """Every input as a numpy array of its spec's dtype and shape; batched inputs agree on the batch size."""
    arrays = {name: to_array(columns[name], spec) for name, spec in specs.items()}
    batches = {name: len(arrays[name]) for name, spec in specs.items() if spec.batched}
    if len(set(batches.values())) > 1:
        raise RequestError(f"The inputs disagree on the batch size. Received: {batches}. Expected one batch size.")
    return arrays


def to_array(value, spec):
    """One input's JSON value as a checked numpy array; RequestError naming the input otherwise."""
    if spec.kind is None:
        raise RequestError(f"Input {spec.name!r} has dtype {spec.dtype}, which JSON cannot carry.")
    try:
        array = _strings(value, spec) if spec.kind == "string" else _numbers(value, spec)
    except RecursionError:
        raise RequestError(f"Input {spec.name!r} is nested too deeply. Expected {spec.describe()}.") from None
    if spec.shape is not None and (array.ndim != len(spec.shape) or any(
            want is not None and got != want for got, want in zip(array.shape, spec.shape))):
        raise RequestError(f"Input {spec.name!r} has the wrong shape. Received: shape {list(array.shape)} from "
                           f"{preview(value)}. Expected {spec.describe()} (None: any size; the row format adds "
                           "the first dimension).")
    if array.ndim and not array.size:
        raise RequestError(f"Input {spec.name!r} is empty. Received: shape {list(array.shape)}. "
                           f"Expected {spec.describe()} with at least one value.")
    return array if spec.kind == "string" else _cast(array, spec, value)


def _refusal(spec, value, problem, path=None):
    where = f" at {path}" if path else ""
    return RequestError(f"Input {spec.name!r} {problem}. Received: {preview(value)}{where}. "
                        f"Expected {spec.describe()}.")


def _numbers(value, spec):
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):
        raise _refusal(spec, value, "has rows of different lengths or depths (ragged)") from None
    if array.dtype.kind not in "biuf":  # strings, null, objects, or integers beyond 64 bits
        wanted = "true or false" if spec.kind == "bool" else f"numbers ({spec.dtype})"
        path, leaf = _first_leaf(value, lambda item: not isinstance(item, bool) if spec.kind == "bool" else
                                 isinstance(item, bool) or not isinstance(item, (int, float)))
        if path is not None:
            raise _refusal(spec, leaf, f"takes {wanted}", path)
        # Integers beyond 64 bits: named here, exactly (as floats they overflow or lose digits)
        path, leaf = _first_leaf(value, lambda item: isinstance(item, int) and not spec.low <= item <= spec.high)
        if path is not None:
            digits = f" ({len(str(abs(leaf)))} digits)" if len(str(leaf)) > PREVIEW_CHARS else ""
            raise RequestError(f"Input {spec.name!r} holds a value outside {spec.dtype}'s range. Received: "
                               f"{preview(leaf)}{digits} at {path}. Expected {_allowed(spec)} from {spec.low} to "
                               f"{spec.high}.")
        array = np.asarray(value, dtype=np.float64)
    return array


def _first_leaf(value, test, path=()):
    """(index path, value) of the first value that fails `test`, else (None, None)."""
    if not isinstance(value, list):
        return (list(path), value) if test(value) else (None, None)
    for index, item in enumerate(value):
        found = _first_leaf(item, test, (*path, index))
        if found[0] is not None:
            return found
    return None, None


def _cast(array, spec, value):
    if (array.dtype.kind == "b") != (spec.kind == "bool"):
        path, leaf = _first_leaf(value, lambda item: isinstance(item, bool) != (spec.kind == "bool"))
        wanted = "true or false" if spec.kind == "bool" else "numbers, not true/false"
        raise _refusal(spec, leaf, f"takes {wanted}", path)
    if spec.kind == "bool":
        return array
    if spec.kind == "int" and array.dtype.kind == "f":  # 3.0 is an integer; 3.5, NaN and Infinity are not
        bad = ~np.isfinite(array) | (array != np.trunc(array)) | (array < spec.low) | (array >= float(spec.high + 1))
    else:  # NaN and Infinity are valid floats
        bad = ((array < spec.low) | (array > spec.high)) & (np.isfinite(array) if array.dtype.kind == "f" else True)
    if np.any(bad):
        index = [int(position) for position in np.argwhere(bad)[0]] if array.ndim else []
        raise RequestError(f"Input {spec.name!r} holds a value outside {spec.dtype}'s range. Received: "
                           f"{array[tuple(index)].item()} at {index}. "
                           f"Expected {_allowed(spec)} from {spec.low} to {spec.high}.")
    return array.astype(spec.dtype, copy=False)


def _allowed(spec):
    return "integers" if spec.kind == "int" else "finite numbers, NaN or Infinity"


def _strings(value, spec):
    leaves = _bytes_leaves(value, spec)
    try:
        array = np.array(leaves, dtype=object)
    except (ValueError, TypeError):
        array = None
    if array is None or any(not isinstance(item, bytes) for item in array.flat):
        raise _refusal(spec, value, "has rows of different lengths or depths (ragged)")
    return array


def _bytes_leaves(value, spec):
    if isinstance(value, list):
        return [_bytes_leaves(item, spec) for item in value]
    try:
        if isinstance(value, str):
            return value.encode("utf-8")
        if isinstance(value, dict) and list(value) == ["b64"] and isinstance(value["b64"], str):
            return base64.b64decode(value["b64"], validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise _refusal(spec, value, "holds a string that is not valid UTF-8 or base64") from None
    raise _refusal(spec, value, 'takes strings, or {"b64": "..."} for bytes')


# === A model's refusal ===

MODEL_ERROR_CHARS = 600  # what an answer quotes of the model's own error message
_TF_NOISE = re.compile(r"^(Graph execution error:|Detected at node .* defined at \(most recent call last\):|"
                       r"<stack traces unavailable>|\s+File \".*|\s{4,}\S.*|\s*\[\[\{\{.*\}\}\]\].*)$")


def model_refusal(message):
    """RequestError (400) of a value the model's graph refused (TensorFlow's InvalidArgumentError message): its
    own text without TensorFlow's graph stack and node names, a `tf.debugging.Assert`'s data items joined into
    one sentence, cut at a word past MODEL_ERROR_CHARS."""
    lines = [line for line in message.splitlines() if line.strip() and not _TF_NOISE.match(line)]
    text = re.sub(r"\s*\[Op:[^\]]*\]\s*$", "", " ".join(" ".join(lines).split()))
    if text.startswith("assertion failed: "):
        text = " ".join(_bracketed(text[len("assertion failed: "):])) or text
    if len(text) > MODEL_ERROR_CHARS:
        text = text[:MODEL_ERROR_CHARS].rsplit(" ", 1)[0] + " ..."
    return RequestError(f"The model refused the request: {text}")


def _bracketed(text):
    """The contents of the top-level [...] items of `text` (nested brackets kept)."""
    items, depth, start = [], 0, 0
    for position, character in enumerate(text):
        if character == "[":
            depth += 1
            start = position + 1 if depth == 1 else start
        elif character == "]" and depth:
            depth -= 1
            if not depth:
                items.append(text[start:position].strip())
    return [item for item in items if item]


# === Responses ===


def encode(outputs, rows=None):
    """TF Serving's answer: `{"predictions": [one per instance]}` (row format: `rows` instances) or
    `{"outputs": ...}` (columnar); a lone output is not named."""
    values = {name: _jsonable(np.asarray(array)) for name, array in outputs.items()}
    if rows is None:
        return {"outputs": next(iter(values.values())) if len(values) == 1 else values}
    sizes = {name: (np.shape(array) or [None])[0] for name, array in outputs.items()}
    if any(size != rows for size in sizes.values()):
        raise RequestError(f"This signature's outputs are not one per instance, so the row format cannot carry them. "
                           f"Received: {rows} instances, outputs of first dimension {sizes}. Expected the columnar "
                           'format: {"inputs": ...}.')
    if len(values) == 1:
        return {"predictions": next(iter(values.values()))}
    return {"predictions": [{name: value[index] for name, value in values.items()} for index in range(rows)]}


def answer_bytes(outputs, rows=None):
    """`encode(outputs, rows)` as JSON bytes. orjson writes the numpy arrays itself (30 times faster than
    `tolist` + `json.dumps` on a photo model's float mask); answers holding NaN or Infinity, which orjson would
    write as null, and dtypes it does not know (bfloat16) go through `json.dumps`, which writes `NaN` and
    `Infinity` as TF Serving does."""
    import orjson

    answer = encode(outputs, rows)
    if all(np.isfinite(array).all() for array in map(np.asarray, outputs.values()) if array.dtype.kind == "f"):
        try:
            return orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)
        except orjson.JSONEncodeError:
            pass
    return json.dumps(answer, default=_plain).encode()


def _plain(value):
    """What `json.dumps` cannot write itself: numpy arrays and scalars as Python lists and numbers."""
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _jsonable(array):
    """Numbers as numpy arrays (written by `answer_bytes`); bytes as UTF-8 text, or `{"b64": ...}` when they are
    not text."""
    if array.dtype != object and array.dtype.kind != "S":
        return np.ascontiguousarray(array)
    return _text(array.tolist())


def _text(item):
    if isinstance(item, list):
        return [_text(value) for value in item]
    if not isinstance(item, bytes):
        return item
    try:
        return item.decode("utf-8")
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(item).decode()}
