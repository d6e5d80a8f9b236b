"""Validation of config values, used in each config's `__post_init__`: each check raises `ConfigError` in the
"Invalid value for X. Received: ... Expected ..." form, with a `--set` example that fixes it. No TensorFlow."""

import dataclasses
import math

from shared.errors import ConfigError

def check_range(name, value, low=None, high=None, *, low_inclusive=True, high_inclusive=True):
    """Raise ConfigError unless `low <= value <= high` (bounds optional) and `value` is finite."""
    if value is None:
        return
    check_finite(name, value, f"in {_interval(low, high, low_inclusive, high_inclusive)}")
    too_low = low is not None and (value < low if low_inclusive else value <= low)
    too_high = high is not None and (value > high if high_inclusive else value >= high)
    if too_low or too_high:
        raise ConfigError(
            f"Invalid value for config key {name}. Received: {name}={value!r}. "
            f"Expected a number in {_interval(low, high, low_inclusive, high_inclusive)}. "
            f"Fix it with --set {name}=<value in range>."
        )


def _interval(low, high, low_inclusive, high_inclusive):
    left = "[" if low_inclusive else "("
    right = "]" if high_inclusive else ")"
    return f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"


def check_finite(name, value, expected="", example=None):
    """Raise ConfigError if `value` (a number or a tuple of numbers) holds NaN or an infinity."""
    values = value if isinstance(value, (tuple, list)) else (value,)
    if all(not isinstance(item, float) or math.isfinite(item) for item in values):
        return
    what = "a list of finite numbers" if isinstance(value, (tuple, list)) else "a finite number"
    fix = f"--set {name}={example}" if example is not None else f"--set {name}=<finite number>"
    raise ConfigError(
        f"Invalid value for config key {name}. Received: {name}={show_value(value)}. "
        f"Expected {what}{' ' + expected if expected else ''}. Fix it with {fix}."
    )


def show_value(value):
    return ",".join(map(str, value)) if isinstance(value, (tuple, list)) else repr(value)


def check_finite_fields(config):
    """NaN and infinities are refused in every float field (and every tuple of floats) of `config`."""
    for field in dataclasses.fields(config):
        default = field.default if field.default is not dataclasses.MISSING else None
        example = show_value(default) if default is not None else None
        check_finite(field.name, getattr(config, field.name), example=example)


_COUNTS = ("zero", "one", "two", "three", "four")


def check_sizes(name, values, example, *, count=(1, None), meaning=""):
    """Raise ConfigError unless `values` is a tuple of positive integers (layer widths, kernel sizes, dilation
    rates) whose length is within `count` (low, high; None: no upper bound). `meaning` says what they are,
    `example` is a valid value for the fix, e.g. "32,64"."""
    low, high = count
    if low <= len(values) and (high is None or len(values) <= high) and all(value >= 1 for value in values):
        return
    bounds = [n for n in (low, high) if n is not None]
    words = [_COUNTS[n] for n in bounds] if max(bounds) < len(_COUNTS) else [str(n) for n in bounds]
    how_many = (f"{words[0]} or more" if high is None else words[0] if low == high
                else " or ".join(words) if high == low + 1 else " to ".join(words))
    raise ConfigError(
        f"Invalid value for config key {name}. Received: {name}={tuple(values)!r}. Expected {how_many} positive "
        f"integers{meaning}. Fix: --set {name}={example}."
    )


def check_heads(embedding_dim, num_heads):
    """Attention splits `embedding_dim` across `num_heads`: it must divide evenly."""
    if embedding_dim % num_heads:
        raise ConfigError(
            f"Invalid value for config key num_heads. Received: num_heads={num_heads} with embedding_dim="
            f"{embedding_dim}. Expected a divisor of embedding_dim. Fix it with --set num_heads=<divisor>, e.g. "
            f"--set num_heads={max(d for d in range(1, min(num_heads, embedding_dim) + 1) if embedding_dim % d == 0)}."
        )


def check_choice(name, value, choices):
    """Raise ConfigError unless `value` is one of `choices`."""
    if value not in choices:
        raise ConfigError(
            f"Invalid value for config key {name}. Received: {name}={value!r}. "
            f"Expected one of: {', '.join(map(str, choices))}."
        )
