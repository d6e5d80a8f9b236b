"""The app contract: what every task of every app implements.

A Task is stateless; the pipeline (`pipelines.train`) calls its methods in this
order and owns everything around them (config resolution, MLflow run, callbacks,
export, verification):

    check_inputs(config, data_dir)       -> DataSource: fail fast, before an MLflow run exists
    build_data(config, source)           -> Data (tf.data datasets, lineage, info)
    build_model(config, data)            -> a compiled keras.Model
    fit(model, data, config, callbacks, checkpoint_dir)   (callbacks: weight averaging when the config has
                                            `ema_momentum`, metric_callbacks(config, data), then early
                                            stopping, LR on plateau, NaN guard, the pipeline's; with
                                            `frozen_features(config)`, only the layers after a frozen front
                                            train, on its output computed once: `shared.frozen`)
    after_fit(model, data, config)       -> dict merged into `data.info`: what serving needs that only
                                            exists after training (a decision threshold, an item index)
    endpoints(model, config, info)       -> {"serving_default": Endpoint(...), ...}
    evaluate(serving, data, config)      -> Report (metrics, figures, tables, files)

`info` (JSON values and numpy arrays) is saved with the run (`data_info.json`, arrays in
`data_info.npz`), so `dlsuite export --run-id` rebuilds exactly the endpoints training wrote
from the logged Keras model, the run's config and that info (with `--set`, the config's
`Task.serving_keys` changed).

`evaluate` receives `serving`, a `shared.export.Serving`: every signature's predictor by name
(`serving["generate"](...)`), and `serving(**inputs)` calls `serving_default`. In training it is
the in-memory endpoints; in `dlsuite evaluate` it is the reloaded SavedModel, so what is measured
is what is served.

How the six apps plug in:
- vision, speech, nlp, fraud: the default `fit` (keras `model.fit` with BackupAndRestore for
  resume). The model takes raw inputs (uint8 pixels, waveforms, strings, typed columns): its
  preprocessing is a Keras layer inside it, so the logged model, the export and the benchmark
  run one object. Speech's `embedding` model names its frozen pretrained front in `frozen_features`, so
  an epoch costs its head's time. Exceptions: nlp's translation and language models train on token ids (teacher forcing
  feeds the target's tokens); their endpoints tokenize the strings, so serving still takes raw text.
- recommender: several named id inputs; `Data.train` yields dicts; `metric_callbacks` ranks the
  catalogue for the validation users each epoch (early stopping watches it); `after_fit` computes the
  candidate index serving retrieves from.
- GANs, VAEs and diffusion: a `keras.Model` subclass overriding `train_step`; `fit` is still
  `model.fit`. `Data.train` yields features only. Generating endpoints take an integer `seed`
  input (`shared.export.seed_spec`, stateless random ops), so a sample is reproducible.
- fraud: periods cut by date (train, then validation and test each after a labelling delay), class weights
  (`Task.class_weight`); `metric_callbacks` scores the validation period each epoch (average precision,
  card precision) and `monitor_of` watches it for the classifiers; a decision threshold chosen in `after_fit`.
- gaming_rl: overrides `fit` with its own environment loop, drives the same callbacks through
  `keras.callbacks.CallbackList` and checkpoints into `checkpoint_dir`; `Data.train` is None and
  `evaluate` plays episodes with `serving`. Its self-play tasks (AlphaZero on board games) read a `game`
  data source (the rules are the data), train in `model.fit` rounds between self-play games and evaluate by
  playing matches with a search through `serving`.
"""

import dataclasses
import typing
from pathlib import Path

import keras

from shared import callbacks as shared_callbacks


@dataclasses.dataclass(frozen=True)
class DataSource:
    """Where a run's data comes from, as `check_inputs` resolved it; recorded with the run.

    kind: "files" (a local folder in the dataset's official layout), "tfds" (a TFDS dataset,
    downloaded once into the TFDS cache), "environment" (a Gymnasium simulator: RL), "game" (the rules of a
    board game the app implements: self-play) or "memory" (tests).
    location: the folder, the TFDS dataset name, the environment id or the game's name.
    """

    kind: str
    location: str

    KINDS = ("files", "tfds", "environment", "game", "memory")

    def __post_init__(self):
        if self.kind not in self.KINDS:
            raise ValueError(f"Invalid data source kind. Received: kind={self.kind!r}. Expected one of: {self.KINDS}.")

    @property
    def path(self):
        """The local folder (kind "files"), else None."""
        return Path(self.location) if self.kind == "files" else None

    @property
    def uri(self):
        """A URI for lineage and tags: an absolute path, `tfds://name`, `gymnasium://id`, `game://name` or
        `memory://name`."""
        if self.kind == "files":
            return str(Path(self.location).resolve())
        scheme = {"tfds": "tfds", "environment": "gymnasium", "game": "game", "memory": "memory"}[self.kind]
        return f"{scheme}://{self.location}"

    @classmethod
    def files(cls, folder):
        return cls("files", str(Path(folder).resolve()))


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
    train: typing.Any = None  # batched tf.data.Dataset for fit: (x, y), (x, y, sample_weight) or x alone (None for RL)
    validation: typing.Any = None
    test: typing.Any = None  # what `evaluate` reads: raw serving inputs and targets
    records: list = dataclasses.field(default_factory=list)  # [DatasetRecord]
    info: dict = dataclasses.field(default_factory=dict)  # JSON values and numpy arrays; saved with the run
    source: typing.Optional[DataSource] = None  # set by the pipeline: the resolved source


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
    # `(metric, mode)` of the test score `evaluate` logs that ranks models, when it is not the test counterpart of
    # the monitor (`val_map` is not computed, `test_loss` not logged...): see `headline_metric`.
    headline = None
    # Why this task cannot train under a tf.distribute strategy (`--workers`, TF_CONFIG, distribution=mirrored):
    # None when it can. `dlsuite train` refuses such a job with this reason (exit 2) before a run opens.
    cannot_distribute = None
    # Why this task trains in float32 only (`shared.precision.check_supported` refuses `precision=mixed_*` with it),
    # or None: the task builds and trains under any precision.
    precision_refusal = None
    # Config keys that shape only the serving graph built by `endpoints` (a threshold, test-time averaging), never
    # the weights: `dlsuite export --run-id ID --set KEY=VALUE` may change them, e.g. to trade a little quality
    # for throughput; it refuses every other key (those need training again).
    serving_keys = ()

    # === Inputs ===

    def check_inputs(self, config, data_dir):
        """Validate the data cheaply (raise `shared.errors.DataError`) and return its `DataSource`."""
        raise NotImplementedError

    def build_data(self, config, source):
        raise NotImplementedError

    # === Model ===

    def build_model(self, config, data):
        raise NotImplementedError

    def monitor_of(self, config):
        """`(metric, mode)`: the validation metric early stopping, LR reduction and `dlsuite tune` watch for this
        config, and whether higher ("max") or lower ("min") is better. The class's `monitor` / `monitor_mode` by
        default; a task whose validation metric depends on its config overrides this."""
        return self.monitor, self.monitor_mode

    def headline_metric(self, config):
        """`(metric, mode)`: the score `dlsuite evaluate` reports first and the model registry's champion gate
        compares; the class's `headline`, else the test counterpart of `monitor_of` (`val_accuracy` ->
        `test_accuracy`). It must be a metric `evaluate` logs (the contract harness checks every task)."""
        if self.headline is not None:
            return self.headline
        monitor, mode = self.monitor_of(config)
        return ("test_" + monitor.removeprefix("val_")), mode

    def callbacks(self, config):
        """Early stopping, LR on plateau and the NaN guard, from the config's fields."""
        monitor, mode = self.monitor_of(config)
        return shared_callbacks.standard_callbacks(
            monitor=monitor,
            mode=mode,
            early_stopping_patience=config.early_stopping_patience,
            reduce_lr_patience=config.reduce_lr_patience,
            max_seconds=getattr(config, "max_train_seconds", None),  # a FitConfig has no wall-time budget
            learning_rate=config.learning_rate,
            encoder_learning_rate=getattr(config, "encoder_learning_rate", None),  # tasks with a pretrained part
        )

    def metric_callbacks(self, config, data):
        """Callbacks that add validation metrics to each epoch's logs (a ranking of the whole catalogue, a
        decoded BLEU, ...). They run before early stopping, the LR schedule and the MLflow logger, so
        `monitor` may name what they add."""
        return []

    def class_weight(self, config, data):
        """`{class_id: weight}` for `model.fit` (imbalanced classes), or None. Sample weights ride in
        `Data.train` as `(x, y, sample_weight)` batches instead."""
        return None

    def frozen_features(self, config):
        """The name of the layer where the model's frozen front ends, or None (the default: everything trains).

        A task returns it when every layer up to it is frozen and nothing random runs before it (a pretrained
        extractor without augmentation), so its output is the same in every epoch. `fit` then computes that
        output once for the training and validation data and trains the layers after it on it
        (`shared.frozen`); a `Normalization` reading that output without given statistics is adapted on it first.
        Under a tf.distribute strategy the whole model trains as usual (after that adaptation)."""
        return None

    def fit(self, model, data, config, callbacks, checkpoint_dir):
        """Train with `model.fit`; BackupAndRestore in `checkpoint_dir` makes a killed run resumable. With
        `frozen_features`, what is fitted is the head after that layer, on its precomputed output."""
        import tensorflow as tf

        train, validation, whole = data.train, data.validation, model
        layer = self.frozen_features(config)
        if layer is not None:
            from shared import frozen

            extractor, head = frozen.split_at(model, layer)
            features = frozen.precompute(extractor, train, shuffle=True, seed=config.seed, label="training")
            frozen.adapt_readers(model, layer, features)
            if model.distribute_strategy is tf.distribute.get_strategy():  # a strategy trains the whole model
                model, train = head, features
                validation = (frozen.precompute(extractor, validation, label="validation")
                              if validation is not None else None)
        backup = keras.callbacks.BackupAndRestore(str(checkpoint_dir), delete_checkpoint=False)
        model.fit(
            train,
            validation_data=validation,
            epochs=config.epochs,
            shuffle=False,  # tf.data shuffles; Keras cannot shuffle a Dataset
            class_weight=self.class_weight(config, data),
            callbacks=[backup, *shared_callbacks.weight_averaging(config), *self.metric_callbacks(config, data),
                       *self.callbacks(config), *callbacks],
            verbose=shared_callbacks.fit_verbosity(),
        )
        if model is not whole:  # the head's trainable weights are the whole model's: so is its optimizer state
            whole.optimizer = model.optimizer

    def after_fit(self, model, data, config):
        """What serving needs that is computed after training (thresholds, indexes); merged into info."""
        return {}

    # === Serving and evaluation ===

    def endpoints(self, model, config, info):
        """Return `{"serving_default": Endpoint, ...}` taking raw inputs."""
        raise NotImplementedError

    def example_inputs(self, data):
        """A small dict of numpy arrays for `serving_default`, used to verify the export."""
        raise NotImplementedError

    def signature_examples(self, data):
        """`{signature: inputs}` the export is verified on; tasks with more signatures add theirs."""
        return {"serving_default": self.example_inputs(data)}

    def evaluate(self, serving, data, config):
        raise NotImplementedError

    def model_example(self, data):
        """A few model inputs (not serving inputs) for the MLflow model signature.

        Batches may be `(features, targets[, weights])` or features alone, and features a tensor or a dict.
        """
        batch = next(iter(data.validation if data.validation is not None else data.train))
        features = batch[0] if isinstance(batch, tuple) else batch
        return keras.tree.map_structure(lambda value: keras.ops.convert_to_numpy(value)[:4], features)
