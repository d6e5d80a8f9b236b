"""Errors the CLI prints as one line, without a traceback.

`UsageError` (exit 2): bad input a user can fix, raised before any work starts.
`RunFailed` (exit 1): the input was fine but the run failed (e.g. training diverged);
the MLflow run ends FAILED with the reason.
`Interrupted` (exit 130 for SIGINT, 143 for SIGTERM): the run was stopped from outside.
"""


class UsageError(ValueError):
    """Bad input: what was wrong, what was expected, and how to fix it.

    Raised before any work starts (config, arguments, data files), so that no
    MLflow run is opened for a job that cannot run.
    """


class ConfigError(UsageError):
    """A configuration value, key or file is invalid."""


class DataError(UsageError):
    """A dataset is missing, incomplete or malformed."""


class RunFailed(RuntimeError):
    """A run that started could not finish; the message says why and what to try."""


class ExportCheckFailed(RunFailed):
    """The SavedModel, reloaded in a fresh process, did not answer like the in-memory model: no version
    was published (the checkpoints stay; `--resume` retries the export)."""


class TrainingDiverged(RunFailed):
    """The training loss became NaN or infinite; nothing is exported."""


class Interrupted(KeyboardInterrupt):
    """A signal stopped the run. `reason` is what the run records, `exit_code` what the CLI returns."""

    EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143, "SIGHUP": 129}
    DESCRIPTIONS = {"SIGINT": "SIGINT (Ctrl-C)", "SIGTERM": "SIGTERM", "SIGHUP": "SIGHUP (terminal closed)"}

    def __init__(self, signal_name="SIGINT"):
        super().__init__(self.DESCRIPTIONS.get(signal_name, signal_name))
        self.signal_name = signal_name
        self.exit_code = self.EXIT_CODES.get(signal_name, 130)


def interrupt_reason(error):
    """What stopped a run: "SIGTERM", or "SIGINT (Ctrl-C)" for Python's plain KeyboardInterrupt (no message)."""
    return str(error) or Interrupted.DESCRIPTIONS["SIGINT"]
