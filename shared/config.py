"""Typed, validated configs.

Every task has one frozen dataclass config. Presets are small functions that
return the default with only the differences changed. A run's config is
resolved in this order: preset -> YAML override file -> `--set key=value`
pairs -> `--seed`. The resolved config is saved with every run as
`config.yaml` so the run can be reproduced or resumed.

This module must not import TensorFlow: `dlsuite list` and `--help` use it.
"""

import dataclasses
import difflib
import sys
import types
import typing
from pathlib import Path

import yaml

from shared.distribute import DISTRIBUTIONS
from shared.checks import check_choice, check_finite_fields, check_range, show_value
from shared.errors import ConfigError
from shared.optimizers import OPTIMIZERS
from shared.precision import PRECISIONS


@dataclasses.dataclass(frozen=True)
class BaseConfig:
    """Fields every task has."""

    seed: int = 42

    def __post_init__(self):
        check_finite_fields(self)
        check_range("seed", self.seed, 0, 2**31 - 1)


@dataclasses.dataclass(frozen=True)
class FitConfig(BaseConfig):
    """Fields of the `model.fit()` loop: epochs, batches, the data's slices, early stopping. A task whose model
    trains with its own optimizers (the GAN) derives from this; every other task from `SupervisedConfig`."""

    epochs: int = 10
    batch_size: int = 128
    learning_rate: float = 1e-3
    early_stopping_patience: int = 5
    reduce_lr_patience: int = 0
    max_train_examples: typing.Optional[int] = None
    max_test_examples: typing.Optional[int] = None
    validation_fraction: float = 0.1
    # The tf.distribute strategy (`shared.distribute`): auto = MultiWorkerMirroredStrategy when TF_CONFIG describes
    # several workers, else none; mirrored = this host's devices. batch_size is the global batch either way.
    distribution: str = "auto"

    # The Keras dtype policy the model is built and trained under (`shared.precision`): float32, mixed_bfloat16,
    # mixed_float16, or auto (bfloat16 where the CPU or GPU runs it fast, else float32).
    precision: str = "float32"

    def __post_init__(self):
        super().__post_init__()
        check_choice("precision", self.precision, PRECISIONS)
        check_range("epochs", self.epochs, 1)
        check_range("batch_size", self.batch_size, 1)
        check_range("learning_rate", self.learning_rate, 0, low_inclusive=False)
        check_range("early_stopping_patience", self.early_stopping_patience, 0)
        check_range("reduce_lr_patience", self.reduce_lr_patience, 0)
        check_range("max_train_examples", self.max_train_examples, 1)
        check_range("max_test_examples", self.max_test_examples, 1)
        check_range("validation_fraction", self.validation_fraction, 0, 1, high_inclusive=False)
        check_choice("distribution", self.distribution, DISTRIBUTIONS)


@dataclasses.dataclass(frozen=True)
class OptimizerConfig(FitConfig):
    """`FitConfig` and what `shared.optimizers.build_optimizer` reads: the optimizer, its schedule, clipping and
    the wall-time budget. A task whose model averages its weights its own way (diffusion's EMA network) derives
    from this; every other task from `SupervisedConfig`."""

    optimizer: str = "adam"
    weight_decay: float = 0.0
    learning_rate_schedule: str = "constant"
    warmup_epochs: int = 0
    # A wall-time budget in seconds: training stops after the batch that crosses it, and the learning rate follows
    # the clock instead of the epochs (warmup, then cosine to zero: `shared.callbacks.TimeBudget`), so the run ends
    # annealed on a fast machine or a slow one. None: no budget.
    max_train_seconds: typing.Optional[float] = None
    clipnorm: typing.Optional[float] = None  # clip each gradient's norm to this (None: no clipping)

    def __post_init__(self):
        super().__post_init__()
        check_choice("optimizer", self.optimizer, sorted(OPTIMIZERS))
        check_range("weight_decay", self.weight_decay, 0)
        check_choice("learning_rate_schedule", self.learning_rate_schedule, ["constant", "cosine"])
        check_range("warmup_epochs", self.warmup_epochs, 0)
        if self.warmup_epochs >= self.epochs:
            raise ConfigError(
                f"Invalid value for config key warmup_epochs. Received: warmup_epochs={self.warmup_epochs} with "
                f"epochs={self.epochs}. Expected a number in [0, {self.epochs - 1}]: warmup must end before training "
                f"does. Fix it with --set warmup_epochs={self.epochs - 1} or more epochs."
            )
        check_range("max_train_seconds", self.max_train_seconds, 0, low_inclusive=False)
        check_range("clipnorm", self.clipnorm, 0, low_inclusive=False)


@dataclasses.dataclass(frozen=True)
class SupervisedConfig(OptimizerConfig):
    """Fields every `model.fit()` task has: `OptimizerConfig` and the optimizer's weight averaging."""

    # Polyak averaging: the optimizer keeps an exponential moving average of the weights with this momentum (0.99
    # averages over the last ~100 steps); validation, early stopping and the trained model use the average, training
    # steps the raw weights (`shared.callbacks.AveragedWeights`). None: off.
    ema_momentum: typing.Optional[float] = None

    def __post_init__(self):
        super().__post_init__()
        check_range("ema_momentum", self.ema_momentum, 0, 1, low_inclusive=False, high_inclusive=False)


# === Resolving a config from a preset and overrides ===


def field_names(config_class):
    return [field.name for field in dataclasses.fields(config_class)]


def unknown_key_error(config_class, key, where):
    """The error for a key `config_class` has no field for, with the closest field as a hint (also for `tune`)."""
    names = field_names(config_class)
    close = difflib.get_close_matches(key, names, n=1)
    # A config may say why it lacks a key other configs have (`UNKNOWN_KEY_HINTS`: key -> sentence).
    explained = getattr(config_class, "UNKNOWN_KEY_HINTS", {}).get(key)
    hint = f" {explained}" if explained else f" Did you mean {close[0]!r}?" if close else ""
    return ConfigError(
        f"Unknown config key {key!r} ({where}). Received: {key}. "
        f"Expected one of: {', '.join(names)}.{hint}"
    )


def _coerce(config_class, key, value, where):
    """Convert `value` (a YAML value or a `--set` string) to the field's type."""
    hints = typing.get_type_hints(config_class)
    target = hints[key]
    origin = typing.get_origin(target)
    optional = origin in (typing.Union, types.UnionType) and type(None) in typing.get_args(target)
    if optional:
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
            return None
        target = next(arg for arg in typing.get_args(target) if arg is not type(None))
        origin = typing.get_origin(target)
    if origin is tuple:
        return _coerce_tuple(config_class, key, value, where, typing.get_args(target)[0])
    try:
        return _scalar(target, value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"Invalid value for config key {key} ({where}). Received: {key}={value!r}. "
            f"Expected a value of type {getattr(target, '__name__', target)}."
        ) from None


def _coerce_tuple(config_class, key, value, where, item_type):
    """A tuple field from "32,64", "(32, 64)", a YAML list or one number."""
    try:
        items = [part for part in value.strip("()[] ").split(",") if part.strip()] if isinstance(value, str) else value
        return tuple(_scalar(item_type, item) for item in (items if isinstance(items, (list, tuple)) else [items]))
    except (TypeError, ValueError):
        default = config_class.__dataclass_fields__[key].default
        example = show_value(default) if isinstance(default, tuple) and default else {int: "32,64"}.get(item_type, "0.1,0.2")
        raise ConfigError(
            f"Invalid value for config key {key} ({where}). Received: {key}={value!r}. "
            f"Expected a comma-separated list of {item_type.__name__}, e.g. {key}={example}. "
            f"Fix it with --set {key}={example}."
        ) from None


def _scalar(target, value):
    if target is bool:
        if isinstance(value, bool):
            return value
        lowered = str(value).strip().lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise ValueError(value)
    if target is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(value)
        return int(str(value).strip()) if isinstance(value, str) else int(value)
    if target is float:
        if isinstance(value, bool):
            raise ValueError(value)
        return float(value)
    if target is str:
        return str(value)
    raise TypeError(f"unsupported config field type {target}")


def parse_set_pairs(pairs):
    """`["a=1", "b=x"]` -> `{"a": "1", "b": "x"}`."""
    result = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"Invalid --set argument. Received: {pair!r}. Expected the form key=value, "
                "for example --set epochs=3."
            )
        result[key.strip()] = value.strip()
    return result


def load_yaml_overrides(path):
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"Config file not found. Received: --config {path}. Expected a YAML file of "
            "key: value pairs; check the path."
        )
    try:
        data = yaml.load(path.read_bytes().decode("utf-8"), Loader=_OverridesLoader) or {}  # noqa: S506 - safe
    except UnicodeDecodeError as error:
        raise ConfigError(f"Config file {path} is not UTF-8 text. Received: byte {error.object[error.start]:#04x} at "
                          f"offset {error.start}. Expected a YAML file of key: value pairs.") from None
    except (yaml.YAMLError, RecursionError) as error:
        raise ConfigError(f"Config file {path} is not valid YAML: {' '.join(str(error).split())[:300]}. "
                          "Expected key: value pairs.") from None
    if isinstance(data, dict) and isinstance(data.get("config"), dict):
        data = data["config"]  # a config.yaml saved with a run
    if not isinstance(data, dict):
        raise ConfigError(
            f"Config file {path} must hold a mapping of key: value pairs. "
            f"Received: a {type(data).__name__}."
        )
    for key in data:
        if not isinstance(key, str):
            raise ConfigError(f"Config file {path} has a key that is not a name. Received: {key!r} (type "
                              f"{type(key).__name__}). Expected config keys such as epochs: 3.")
    return data


class _OverridesLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases: a few hundred bytes of nested aliases expand to gigabytes."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.YAMLError(f"aliases (*name) are not supported, found one on line {mark.line + 1}; "
                                 "write the value out")
        return super().compose_node(parent, index)


def apply_overrides(config, overrides, where):
    """Return a copy of `config` with `overrides` (a dict) applied, validated.

    The copy remembers which keys were set explicitly (here or in earlier overrides), so that a
    default the user never set can follow the values they did set (`_fit_dependent_defaults`).
    """
    config_class = type(config)
    names = set(field_names(config_class))
    changes = {}
    for key, value in overrides.items():
        if key not in names:
            raise unknown_key_error(config_class, key, where)
        changes[key] = _coerce(config_class, key, value, where)
    explicit = explicit_keys(config) | set(changes)
    changes.update(_fit_dependent_defaults(config, changes, explicit))
    result = dataclasses.replace(config, **changes)
    object.__setattr__(result, "_explicit_keys", frozenset(explicit))  # not a field: equality and YAML ignore it
    return result


def explicit_keys(config):
    """The keys set by overrides (YAML, --set, --seed) rather than by the preset."""
    return getattr(config, "_explicit_keys", frozenset())


def _fit_dependent_defaults(config, changes, explicit):
    """Lower warmup_epochs the user never set when the epochs they set leave no room for it, with a note.

    `--set epochs=1` on a preset with warmup_epochs=1 would otherwise fail on a key the user never
    touched. When the user set both, the config's own validation reports the conflict.
    """
    if "warmup_epochs" in explicit or not {"warmup_epochs", "epochs"} <= set(field_names(type(config))):
        return {}
    epochs, warmup = changes.get("epochs", config.epochs), config.warmup_epochs
    if not isinstance(epochs, int) or not isinstance(warmup, int) or epochs < 1 or warmup < epochs:
        return {}
    print(f"dlsuite: note: warmup_epochs lowered from {warmup} (the preset's) to {epochs - 1} to fit epochs={epochs}: "
          f"warmup must end before training does. Set --set warmup_epochs=N to choose it.", file=sys.stderr)
    return {"warmup_epochs": epochs - 1}


def to_dict(config):
    return {
        key: (list(value) if isinstance(value, tuple) else value)
        for key, value in dataclasses.asdict(config).items()
    }


def from_dict(config_class, values, where="saved config"):
    """Rebuild a config from `to_dict` output, ignoring nothing: unknown keys are errors."""
    return apply_overrides(config_class(), values, where)


def dump_yaml(app, task, preset, config):
    return yaml.safe_dump(
        {"app": app, "task": task, "preset": preset, "config": to_dict(config)}, sort_keys=False
    )


# === The catalog entry of a task (what `dlsuite list` shows) ===


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """What the CLI knows about a task without importing TensorFlow.

    `task_class` is "module:Class" of the `shared.app.Task` subclass that runs it;
    `presets` maps preset names to functions returning a config instance.
    """

    description: str
    config_class: type
    presets: dict
    task_class: str

    def preset(self, name):
        if name not in self.presets:
            raise ConfigError(
                f"Unknown preset. Received: --preset {name}. "
                f"Expected one of: {', '.join(self.presets)}."
            )
        return self.presets[name]()
