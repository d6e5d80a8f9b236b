"""The Keras model a run logs to MLflow loads with plain MLflow, in a fresh Python without dlsuite.

Each task trains on its tiny harness data (`tests.test_tasks.CASES`), logs its model the way `dlsuite train`
does (`pipelines.train._log_keras_model`), and one fresh process (`tests/mlflow_load_probe.py`, with
dlsuite made unimportable) loads every model with `mlflow.pyfunc.load_model` (predict, and the Keras model of
`get_raw_model()`) and with `mlflow.keras.load_model`, on one example; the outputs must equal the trained
model's. `mlflow.keras.load_model` gives the Keras model of a model of Keras and keras-hub objects only, and
the exported SavedModel (its `serve`) of a model with any other class.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipelines import catalog
from tests.harness import fit_on_tiny_data

PROBE = Path(__file__).with_name("mlflow_load_probe.py")
# One task per family of custom objects: vision's MirrorAverage, nlp's MaskedPooling with keras-hub's transformer
# layers, keras-rs's retrieval layers, fraud's feature layers. nlp's transfer task (keras-hub's BERT preprocessor
# and encoder) takes ~40 s to fit: in the large test with every other task.
DEFAULT_TASKS = {("vision", "classification"): (), ("nlp", "text_classification"): ("model=transformer",),
                 ("recommender", "retrieval"): ("epochs=1",), ("fraud", "detection"): ()}
ALL_TASKS = {(app, task): () for app in catalog.APPS for task in catalog.tasks_of(app)}


def train_and_log(app, task, case, overrides, folder, uri):
    """A tiny fit of the task (`tests.harness`), logged as `dlsuite train` logs it.

    Returns the probe's case (the model URI and one example's inputs) and the trained model's outputs."""
    import keras

    from pipelines.train import _log_keras_model
    from shared import tracking

    _, spec = catalog.task_spec(app, task)
    runner = catalog.load_task(spec)
    config, data, model = fit_on_tiny_data(runner, spec, case, folder, overrides)
    data.info = {**data.info, **runner.after_fit(model, data, config)}
    with tracking.tracked_run(f"mlflow-load-{app}", uri, run_name=task):
        model_uri = _log_keras_model(runner, model, data)
    assert model_uri, f"{app}/{task} logged no model"
    example = keras.tree.map_structure(lambda value: value[:1], runner.model_example(data))
    inputs = {name: as_json(value) for name, value in (example if isinstance(example, dict) else
                                                       {"input": example}).items()}
    expected = keras.tree.map_structure(np.asarray, model(example, training=False))
    case = {"model_uri": model_uri, "tracking_uri": uri, "inputs": inputs}
    return case, expected if isinstance(expected, dict) else {"output": expected}


def as_json(array):
    array = np.asarray(array)
    if array.dtype.kind in "SO":  # strings: str in JSON, an object array again in the probe
        return {"dtype": "object", "values": np.vectorize(lambda value: value.decode() if isinstance(value, bytes)
                                                          else value, otypes=[object])(array).tolist()}
    return {"dtype": array.dtype.name, "values": array.tolist()}


def load_in_fresh_process(cases, folder):
    (folder / "cases.json").write_text(json.dumps(cases))
    done = subprocess.run([sys.executable, str(PROBE), str(folder / "cases.json"), str(folder / "results.json")],
                          cwd=folder, timeout=300, env={"PATH": "/usr/bin:/bin", "HOME": str(folder)},
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((folder / "results.json").read_text())


def check_loads(tasks, tmp_path, tracking_uri):
    from tests.test_tasks import CASES

    cases, expected = [], []
    for (app, task), overrides in tasks.items():
        case, outputs = train_and_log(app, task, CASES[(app, task)], overrides, tmp_path / f"{app}-{task}",
                                      tracking_uri)
        cases.append(case)
        expected.append(outputs)
    probe = load_in_fresh_process(cases, tmp_path)
    assert probe["importable_before"] == {"apps": False, "shared": False, "pipelines": False}, probe
    assert probe["imported_by_keras_loads"] == [], probe["imported_by_keras_loads"]
    assert probe["imported_from"]["shared"].startswith(str(tmp_path)), probe["imported_from"]  # the model's code/
    table = {f"{app}/{task}": {loader: compare(want, result, loader) for loader in ("pyfunc", "raw_model", "keras")}
             for (app, task), want, result in zip(tasks, expected, probe["results"])}
    print(json.dumps(table, indent=1))
    wrong = {name: row for name, row in table.items() if set(row.values()) != {"equal"}}
    assert not wrong, wrong
    kinds = {f"{app}/{task}": " ".join(filter(None, [result.get("keras_type"), result.get("keras_needs")]))
             for (app, task), result in zip(tasks, probe["results"])}  # what mlflow.keras.load_model gave
    print(json.dumps(kinds, indent=1))
    return kinds


def compare(want, result, loader):
    """'equal', 'not loaded: <error>' or what differs."""
    if loader not in result:
        return f"error: {result.get(f'{loader}_error') or result.get('pyfunc_error')}"
    got = {key: np.asarray(value) for key, value in result[loader].items()}
    if set(got) != set(want):
        return f"outputs {sorted(got)}, expected {sorted(want)}"
    for key in want:
        if got[key].shape != want[key].shape or not np.allclose(got[key], want[key], rtol=0, atol=1e-4):
            return f"{key} differs: {got[key].ravel()[:4]} vs {want[key].ravel()[:4]}"
    return "equal"


def test_logged_models_load_with_plain_mlflow(tmp_path, tracking_uri):
    kinds = check_loads(DEFAULT_TASKS, tmp_path, tracking_uri)
    # Custom objects (MirrorAverage, MaskedPooling, keras-rs's layers, fraud's): the exported SavedModel. The
    # transformer's keras-hub tokenizer is inside the model: its SavedModel needs TF Text's ops imported.
    assert kinds == {"vision/classification": "SavedModel", "nlp/text_classification": "SavedModel tensorflow_text",
                     "recommender/retrieval": "SavedModel", "fraud/detection": "SavedModel"}, kinds


@pytest.mark.large
def test_every_task_logs_a_model_that_loads_with_plain_mlflow(tmp_path, tracking_uri):
    check_loads(ALL_TASKS, tmp_path, tracking_uri)
