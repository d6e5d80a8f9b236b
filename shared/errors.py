"""Errors a user can fix. The CLI prints them without a traceback and exits with code 2."""


class UsageError(ValueError):
    """Bad input: what was wrong, what was expected, and how to fix it.

    Raised before any work starts (config, arguments, data files), so that no
    MLflow run is opened for a job that cannot run.
    """


class ConfigError(UsageError):
    """A configuration value, key or file is invalid."""


class DataError(UsageError):
    """A dataset is missing, incomplete or malformed."""
