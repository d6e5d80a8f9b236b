"""One fast check of a task through the whole contract, like keras-hub's `run_task_test`.

`run_task_test` takes a task of `pipelines.catalog` through every step `dlsuite train` runs, on tiny
data the test writes in the official layout: check_inputs, build_data, build_model, one short fit,
after_fit, endpoints, a Keras save/load (what `dlsuite export --run-id` reloads), an export round trip
(every signature of `signature_examples` reloaded in-process equals the in-memory endpoints), evaluate
through the in-memory Serving (whose metrics include the task's headline metric), and each bad input the
task's test lists. Seconds per task.
"""

import dataclasses
import json
import math
import typing

import numpy as np
import pytest

from pipelines import catalog
from pipelines.train import resolve_config


@dataclasses.dataclass(frozen=True)
class BadInput:
    """A request refused before any run opens: `--set` pairs and/or `break_data(folder) -> data_dir`."""

    error: type  # shared.errors.DataError or ConfigError
    match: str  # a regex searched in the message
    overrides: tuple = ()
    break_data: typing.Optional[typing.Callable] = None


@dataclasses.dataclass(frozen=True)
class TaskCase:
    """How to test one task: `make_data(folder) -> data_dir` (None: no files), smoke-preset overrides
    that make the fit tiny, the metric keys `evaluate` must report, and the bad inputs."""

    make_data: typing.Callable
    overrides: tuple
    metrics: tuple
    bad_inputs: tuple = ()


def run_task_test(app, task, case, tmp_path, atol=1e-5):
    """Run the task's contract on tiny data; return the `Report` of its evaluation."""
    import keras

    from shared import export

    task_name, spec = catalog.task_spec(app, task)
    runner = catalog.load_task(spec)
    for number, bad in enumerate(case.bad_inputs):
        folder = case.make_data(tmp_path / f"bad-{number}")
        data_dir = bad.break_data(folder) if bad.break_data else folder
        with pytest.raises(bad.error, match=bad.match):
            config = resolve_config(spec, "smoke", overrides=[*case.overrides, *bad.overrides])
            runner.check_inputs(config, None if data_dir is None else str(data_dir))

    config, data, model = fit_on_tiny_data(runner, spec, case, tmp_path)
    info = {**data.info, **runner.after_fit(model, data, config)}
    json.dumps({key: value for key, value in info.items() if not isinstance(value, np.ndarray)})  # saved with the run
    data.info = info
    keras.tree.map_structure(np.asarray, model(runner.model_example(data), training=False))  # MLflow's signature

    endpoints = runner.endpoints(model, config, info)
    in_memory = export.serve_in_memory(endpoints)
    examples = runner.signature_examples(data)
    assert "serving_default" in examples and set(examples) <= set(endpoints), sorted(examples)
    expected = {signature: in_memory[signature](**inputs) for signature, inputs in examples.items()}

    model.save(tmp_path / "model.keras")  # `dlsuite export --run-id` rebuilds the endpoints from the logged model
    reloaded_model = keras.saving.load_model(tmp_path / "model.keras")
    from_logged = export.serve_in_memory(runner.endpoints(reloaded_model, config, info))
    version_dir, _ = export.export_version(model, endpoints, tmp_path / "exports", f"{app}-{task_name}")
    from_export = export.load_serving(version_dir)
    assert set(from_export) == set(endpoints)
    for serving in (from_logged, from_export):
        for signature, inputs in examples.items():
            assert_outputs_equal(expected[signature], serving[signature](**inputs), atol, signature)

    report = runner.evaluate(in_memory, data, config)
    assert set(case.metrics) <= set(report.metrics), sorted(report.metrics)
    # The score `dlsuite evaluate` reports first and `dlsuite promote` compares must be one evaluate logs.
    assert runner.headline_metric(config)[0] in report.metrics, (runner.headline_metric(config), sorted(report.metrics))
    assert all(math.isfinite(value) for value in report.metrics.values()), report.metrics
    return report


def fit_on_tiny_data(runner, spec, case, folder, overrides=()):
    """Check the inputs, build the data and the model and fit, on the case's tiny data written in `folder`
    (smoke preset, the case's overrides then `overrides`); return `(config, data, model)`."""
    import keras

    from shared.app import DataSource

    config = resolve_config(spec, "smoke", overrides=[*case.overrides, *overrides])
    data_dir = case.make_data(folder / "data")
    source = runner.check_inputs(config, None if data_dir is None else str(data_dir))
    assert isinstance(source, DataSource) and (source.kind != "files" or source.path.is_dir()), source
    keras.utils.set_random_seed(config.seed)
    data = runner.build_data(config, source)
    data.source = source
    model = runner.build_model(config, data)
    (folder / "checkpoints").mkdir(parents=True)
    runner.fit(model, data, config, [], folder / "checkpoints")
    return config, data, model


def assert_outputs_equal(expected, actual, atol, signature):
    assert set(actual) == set(expected), (signature, sorted(actual), sorted(expected))
    for key, want in expected.items():
        message = f"{signature}/{key}"
        if want.dtype.kind in "SUO":
            np.testing.assert_array_equal(actual[key].astype(bytes), want.astype(bytes), err_msg=message)
        else:
            assert actual[key].shape == want.shape, message
            np.testing.assert_allclose(actual[key], want, rtol=0, atol=atol, err_msg=message)
