"""The app contract: what every task of every app implements.

A Task is stateless; the pipeline (`pipelines.train`) calls its methods in this
order and owns everything around them (config resolution, MLflow run, callbacks,
export, verification):

    check_inputs(config, data_dir)      -> fail fast, before an MLflow run exists
    build_data(config, data_dir)        -> Data (tf.data datasets, lineage, info)
    build_model(config, data)           -> a compiled keras.Model
    fit(model, data, config, callbacks, checkpoint_dir) -> None
    endpoints(model, info)              -> {"serving_default": Endpoint(...), ...}
    evaluate(predict, data, config)     -> Report (metrics, figures, tables)

How the six apps plug in:
- vision, speech, nlp, fraud: the default `fit` (keras `model.fit` with
  BackupAndRestore for resume). Their endpoints take raw inputs: uint8 pixels,
  float waveforms or WAV bytes, strings, a dict of typed columns.
- recommender: the model has several named id inputs; `Data.train` yields dicts.
- GANs and diffusion models: a `keras.Model` subclass overriding `train_step`;
  `fit` is still `model.fit`.
- gaming_rl: overrides `fit` with its own environment loop, drives the same
  callbacks through `keras.callbacks.CallbackList` and checkpoints into
  `checkpoint_dir`; `Data.train` is None and `evaluate` plays episodes with
  `predict`.

`evaluate` always receives `predict`, a function from the serving inputs to the
serving outputs: in training it is the in-memory endpoint, in `dlsuite evaluate`
it is the reloaded SavedModel, so both are measured the same way.
"""

import dataclasses
import typing

import keras

from shared import callbacks as shared_callbacks


@dataclasses.dataclass
class DatasetRecord:
    """Lineage of one dataset split, logged with `mlflow.log_input`."""

    name: str
    source: str
    split: str
    num_records: int
    fingerprint: str


@dataclasses.dataclass
class Data:
    train: typing.Any = None  # batched tf.data.Dataset for fit (None for RL)
    validation: typing.Any = None
    test: typing.Any = None  # what `evaluate` reads: raw serving inputs and targets
    records: list = dataclasses.field(default_factory=list)  # [DatasetRecord]
    info: dict = dataclasses.field(default_factory=dict)  # JSON-serializable; saved with the run


@dataclasses.dataclass
class Endpoint:
    """One SavedModel signature: `fn(**inputs) -> dict of tensors`, with named TensorSpecs."""

    fn: typing.Callable
    input_signature: list


@dataclasses.dataclass
class Report:
    metrics: dict
    figures: dict = dataclasses.field(default_factory=dict)  # name.png -> matplotlib Figure
    tables: dict = dataclasses.field(default_factory=dict)  # name.json -> {column: [values]}
    files: dict = dataclasses.field(default_factory=dict)  # name.ext -> bytes (e.g. an episode GIF)


class Task:
    """Base class of every task. Subclasses set `app`, `name` and override the builders."""

    app = None
    name = None
    monitor = "val_loss"  # what early stopping and LR reduction watch
    monitor_mode = "min"
    step_key = None  # a logs key to use as the MLflow step instead of the epoch (RL: env steps)

    # === Inputs ===

    def check_inputs(self, config, data_dir):
        """Validate data sources cheaply and raise `shared.errors.DataError`; return the resolved data dir."""
        return data_dir

    def build_data(self, config, data_dir):
        raise NotImplementedError

    # === Model ===

    def build_model(self, config, data):
        raise NotImplementedError

    def callbacks(self, config):
        """Early stopping, LR on plateau and the NaN guard, from the config's fields."""
        return shared_callbacks.standard_callbacks(
            monitor=self.monitor,
            mode=self.monitor_mode,
            early_stopping_patience=config.early_stopping_patience,
            reduce_lr_patience=config.reduce_lr_patience,
        )

    def fit(self, model, data, config, callbacks, checkpoint_dir):
        """Train with `model.fit`; BackupAndRestore in `checkpoint_dir` makes a killed run resumable."""
        backup = keras.callbacks.BackupAndRestore(str(checkpoint_dir), delete_checkpoint=False)
        model.fit(
            data.train,
            validation_data=data.validation,
            epochs=config.epochs,
            shuffle=False,  # tf.data shuffles; Keras cannot shuffle a Dataset
            callbacks=[backup, *self.callbacks(config), *callbacks],
            verbose=shared_callbacks.fit_verbosity(),
        )

    # === Serving and evaluation ===

    def endpoints(self, model, info):
        """Return `{"serving_default": Endpoint, ...}` taking raw inputs."""
        raise NotImplementedError

    def example_inputs(self, data):
        """A small dict of numpy arrays for `serving_default`, used to verify the export."""
        raise NotImplementedError

    def signature_examples(self, data):
        """`{signature: inputs}` the export is verified on; tasks with more signatures add theirs."""
        return {"serving_default": self.example_inputs(data)}

    def evaluate(self, predict, data, config):
        raise NotImplementedError

    def model_example(self, data):
        """A few model inputs (not serving inputs) for the MLflow model signature."""
        features = next(iter(data.validation if data.validation is not None else data.train))[0]
        if isinstance(features, dict):
            return {key: value[:4].numpy() for key, value in features.items()}
        return features[:4].numpy()

    def custom_objects(self):
        """Custom Keras objects needed to reload a saved model of this task."""
        return {}
