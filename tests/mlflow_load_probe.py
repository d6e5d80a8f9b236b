"""Run as a script in a fresh Python: load logged models with plain MLflow, as a user without dlsuite would.

    python tests/mlflow_load_probe.py CASES.json RESULTS.json

CASES.json: `[{"model_uri": ..., "tracking_uri": ..., "inputs": {name: {"dtype": ..., "values": [...]}}}]`
(JSON: strings stay strings, no pickled object arrays). dlsuite is made unimportable
first (its editable install's finder removed, the repository off `sys.path`), then for each case:
`mlflow.keras.load_model(uri)` (its `serve` when it is a SavedModel, else its call) and
`mlflow.pyfunc.load_model(uri).predict(inputs)`, with the outputs (or
the errors) written to RESULTS.json, and where `apps`/`shared` were imported from. All the Keras loads
come first, before any pyfunc load imports a model's code.
"""

import importlib.util
import json
import sys
from pathlib import Path

sys.meta_path = [finder for finder in sys.meta_path
                 if "__editable___dlsuite" not in getattr(finder, "__module__", type(finder).__module__)]
REPOSITORY = Path(__file__).resolve().parents[1]
sys.path = [entry for entry in sys.path if Path(entry or ".").resolve() != REPOSITORY]
for module in list(sys.modules):
    if module.startswith("__editable___dlsuite"):
        del sys.modules[module]


def arrays_of(outputs):
    import numpy as np

    if isinstance(outputs, dict):
        return {key: np.asarray(value).tolist() for key, value in outputs.items()}
    return {"output": np.asarray(outputs).tolist()}


def load_case(case, loader):
    import keras
    import mlflow
    import numpy as np

    mlflow.set_tracking_uri(case["tracking_uri"])
    inputs = {key: np.array(value["values"], dtype=value["dtype"]) for key, value in case["inputs"].items()}
    inputs = inputs["input"] if list(inputs) == ["input"] else inputs
    result = {}
    if loader == "keras":
        try:
            try:
                model = mlflow.keras.load_model(case["model_uri"])
            except RuntimeError as error:  # a SavedModel of TF Text's ops (keras-hub's tokenizers) needs them
                if "Op type not registered" not in str(error):
                    raise
                import tensorflow_text  # noqa: F401 - registers the ops, as TF Text's docs say to

                model = mlflow.keras.load_model(case["model_uri"])
                result["keras_needs"] = "tensorflow_text"
            # A model with custom objects: its exported SavedModel (`serve`); any other: the Keras model.
            outputs = model.serve(inputs) if hasattr(model, "serve") else model(inputs, training=False)
            result["keras"] = arrays_of(keras.tree.map_structure(np.asarray, outputs))
            result["keras_type"] = "SavedModel" if hasattr(model, "serve") else type(model).__name__
        except Exception as error:  # noqa: BLE001 - the result says which loader failed and why
            result["keras_error"] = f"{type(error).__name__}: {str(error)[:300]}"
        return result
    try:
        model = mlflow.pyfunc.load_model(case["model_uri"])
    except Exception as error:  # noqa: BLE001
        result["pyfunc_error"] = f"{type(error).__name__}: {str(error)[:300]}"
        return result
    try:
        result["pyfunc"] = arrays_of(model.predict(inputs))
    except Exception as error:  # noqa: BLE001
        result["pyfunc_error"] = f"{type(error).__name__}: {str(error)[:300]}"
    result["raw_model"] = arrays_of(keras.tree.map_structure(np.asarray, model.get_raw_model()(inputs, training=False)))
    return result


def main(cases_path, results_path):
    found_before = {name: importlib.util.find_spec(name) is not None for name in ("apps", "shared", "pipelines")}
    cases = json.loads(Path(cases_path).read_text())
    # Every mlflow.keras load first: a pyfunc load imports the model's code/, which registers its classes.
    results = [load_case(case, "keras") for case in cases]
    dlsuite_imported = sorted(name for name in sys.modules if name.split(".")[0] in ("apps", "shared", "pipelines"))
    for result, case in zip(results, cases):
        result.update(load_case(case, "pyfunc"))
    imported_from = {name: getattr(sys.modules.get(name), "__path__", [None])[0] for name in ("apps", "shared")}
    Path(results_path).write_text(json.dumps(
        {"importable_before": found_before, "imported_by_keras_loads": dlsuite_imported,
         "imported_from": imported_from, "results": results}))


if __name__ == "__main__":
    main(*sys.argv[1:])
