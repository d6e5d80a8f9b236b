"""`dlsuite tune --search KEY=SPEC`: parsing and validating the search space.

SPEC is `LOW..HIGH` (an int range for int fields, else float), `LOW..HIGH:log` or `A|B|C`
(choices, each read like `--set KEY=A`). Every candidate (both ends of a range, every choice)
is applied to the config, so its own validation runs before any trial does. No Optuna import
here: a `Dimension` asks the trial it is given for a value.
"""

import dataclasses
import math
import types
import typing

from shared import config as config_lib
from shared.errors import ConfigError, UsageError

EXAMPLES = "--search learning_rate=1e-4..1e-2:log, --search epochs=2..8 or --search 'optimizer=adam|adamw'"


@dataclasses.dataclass(frozen=True)
class Dimension:
    """One searched config key: an int or float range (optionally log scale), or categorical choices."""

    key: str
    spec: str  # as given on the command line
    kind: str  # "int", "float" or "categorical"
    low: typing.Any = None
    high: typing.Any = None
    log: bool = False
    choices: tuple = ()  # the choices as given; coerced to the field's type when applied

    def suggest(self, trial):
        if self.kind == "int":
            return trial.suggest_int(self.key, self.low, self.high, log=self.log)
        if self.kind == "float":
            return trial.suggest_float(self.key, self.low, self.high, log=self.log)
        return trial.suggest_categorical(self.key, list(self.choices))

    def describe(self):
        if self.kind == "categorical":
            return {"kind": self.kind, "choices": list(self.choices)}
        return {"kind": self.kind, "low": self.low, "high": self.high, "log": self.log}


def parse_search_space(config, searches, fixed_keys=None):
    """`["learning_rate=1e-4..1e-2:log", ...]` -> `{key: Dimension}`; every candidate must make a valid config."""
    if not searches:
        raise UsageError(
            f"Nothing to search. Received: no --search. Expected at least one --search KEY=SPEC. "
            f"Fix: add e.g. {EXAMPLES}."
        )
    fixed_keys = fixed_keys or {}  # key -> the argument that fixes it
    space = {}
    for item in searches:
        key, sep, spec = (part.strip() for part in item.partition("="))
        if not sep or not key or not spec:
            raise _malformed(item, "the form KEY=SPEC")
        if key not in config_lib.field_names(type(config)):
            raise config_lib.unknown_key_error(type(config), key, "from --search")
        if key in space:
            raise UsageError(f"Config key {key} is searched twice. Received: --search {space[key].spec} and "
                             f"--search {item}. Expected one --search per key. Fix: merge them into one.")
        if key in fixed_keys:
            raise UsageError(f"Config key {key} is both fixed and searched. Received: {fixed_keys[key]} and "
                             f"--search {item}. Expected one of them. Fix: drop one.")
        dimension = _parse_spec(config, key, spec, item)
        _check_candidates(config, dimension)
        space[key] = dimension
    return space


def _malformed(item, expected):
    return UsageError(
        f"Invalid --search argument. Received: --search {item}. Expected {expected}: SPEC is LOW..HIGH, "
        f"LOW..HIGH:log or A|B|C (two or more choices). Fix: write e.g. {EXAMPLES}."
    )


def _parse_spec(config, key, spec, item):
    if "|" in spec:
        choices = tuple(choice.strip() for choice in spec.split("|"))
        if len(choices) < 2 or not all(choices):
            raise _malformed(item, "two or more non-empty choices separated by |")
        return Dimension(key, spec, "categorical", choices=choices)
    body, log = (spec[: -len(":log")], True) if spec.endswith(":log") else (spec, False)
    low_text, sep, high_text = (part.strip() for part in body.partition(".."))
    if not sep:
        raise _malformed(item, "a range LOW..HIGH or choices A|B|C")
    field_type = _numeric_type(type(config), key)
    if field_type is None:
        raise UsageError(
            f"Invalid --search range for config key {key}. Received: --search {item}, a range on a non-numeric "
            f"field. Expected a range only for int or float fields. Fix: list the values, e.g. "
            f"--search '{key}=A|B' (a tuple's items comma-separated: '16,32|32,64')."
        )
    try:
        low, high = field_type(low_text), field_type(high_text)
    except ValueError:
        expected = "integer bounds for this int field" if field_type is int else "numeric bounds"
        raise _malformed(item, expected) from None
    if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        if not (math.isfinite(low) and math.isfinite(high)):
            fix = "write both bounds as finite numbers"
        elif low > high:
            fix = f"swap them: --search {key}={high_text}..{low_text}{':log' if log else ''}"
        else:
            fix = f"widen the range, or fix the value with --set {key}={low_text}"
        raise UsageError(f"Invalid --search range for config key {key}. Received: --search {item}. Expected finite "
                         f"LOW < HIGH. Fix: {fix}.")
    if log and low <= 0:
        raise UsageError(f"Invalid --search log range for config key {key}. Received: --search {item}. Expected "
                         f"LOW > 0 on a log scale. Fix: raise LOW above 0, or drop :log.")
    return Dimension(key, spec, field_type.__name__, low, high, log)


def _numeric_type(config_class, key):
    """int or float for numeric fields (also Optional ones), else None."""
    target = typing.get_type_hints(config_class)[key]
    arguments = [argument for argument in typing.get_args(target) if argument is not type(None)]
    if typing.get_origin(target) in (typing.Union, types.UnionType) and len(arguments) == 1:
        target = arguments[0]  # Optional[int] -> int
    return target if target in (int, float) else None


def _check_candidates(config, dimension):
    """Apply each end of a range, or each choice, to the config: its own validation runs."""
    if dimension.kind == "categorical":
        candidates = [("choice", choice) for choice in dimension.choices]
    else:
        candidates = [("low end", dimension.low), ("high end", dimension.high)]
    seen = set()
    for label, value in candidates:
        try:
            applied = config_lib.apply_overrides(config, {dimension.key: value}, f"from --search {dimension.key}")
        except ConfigError as error:
            reason = str(error).split(" Fix")[0]  # the Fix below replaces the one for --set
            raise ConfigError(
                f"Invalid --search {dimension.key}={dimension.spec}: its {label} {dimension.key}={value} is not a "
                f"valid config. {reason} Fix: keep every candidate within what --set {dimension.key}=... accepts."
            ) from None
        coerced = getattr(applied, dimension.key)
        if coerced in seen:
            raise UsageError(f"Duplicate choice in --search {dimension.key}={dimension.spec}. Received: "
                             f"{dimension.key}={value} twice. Expected distinct choices. Fix: drop the repeat.")
        seen.add(coerced)


def as_set_pair(key, value):
    """The `--set` pair that gives `key` the suggested `value` (floats in full precision)."""
    return f"{key}={value!r}" if isinstance(value, float) else f"{key}={value}"
