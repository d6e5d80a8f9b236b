"""Train a recommender task in-process on a tiny folder, the way `dlsuite train` does, minus MLflow."""

import dataclasses
import typing


@dataclasses.dataclass
class Fitted:
    runner: typing.Any
    config: typing.Any
    data: typing.Any
    model: typing.Any
    serving: typing.Any  # shared.export.Serving of the in-memory endpoints
    report: typing.Any


def fit(task, folder, tmp_path, preset="smoke", overrides=()):
    import keras

    from pipelines import catalog
    from pipelines.train import resolve_config
    from shared import export

    _name, spec = catalog.task_spec("recommender", task)
    runner = catalog.load_task(spec)
    config = resolve_config(spec, preset, overrides=list(overrides))
    source = runner.check_inputs(config, str(folder))
    keras.utils.set_random_seed(config.seed)
    data = runner.build_data(config, source)
    data.source = source
    model = runner.build_model(config, data)
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir(exist_ok=True)
    runner.fit(model, data, config, [], checkpoints)
    data.info = {**data.info, **runner.after_fit(model, data, config)}
    serving = export.serve_in_memory(runner.endpoints(model, config, data.info))
    return Fitted(runner, config, data, model, serving, runner.evaluate(serving, data, config))
