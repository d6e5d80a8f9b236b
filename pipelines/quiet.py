"""What a CPU user sees: no TensorFlow/MLflow start-up noise unless `--verbose`.

`quiet_output()` sets the quiet defaults of TensorFlow and MLflow (what the user set wins) and installs
an import hook: whoever imports `tensorflow` first (keras, an app), it loads with the lines its native
code writes to fd 2 before its logging starts (absl INFO, CUDA probing on CPU machines) filtered out.
"""

import contextlib
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile


QUIET_ENVIRONMENT = {
    "TF_CPP_MIN_LOG_LEVEL": "2",  # TensorFlow's C++ INFO and WARNING lines, once its logging is initialized
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",  # evaluate and export download artifacts
    "MLFLOW_LOGGING_LEVEL": "WARNING",  # "Creating initial MLflow database tables..."
}
# Lines TensorFlow's native code writes to fd 2 while it loads (before absl logging is initialized, so
# TF_CPP_MIN_LOG_LEVEL cannot stop them) and while it first probes for a GPU.
NATIVE_NOISE = re.compile(
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|^I\d{4} [\d:.]+ +\d+ \S+:\d+\] "  # absl INFO lines (oneDNN, cpu_feature_guard, ...)
    r"|^To enable the following instructions: .*rebuild TensorFlow"
    r"|Could not find cuda drivers on your machine|failed call to cuInit"
    r"|Unable to register cu(DNN|FFT|BLAS) factory|TF-TRT Warning: Could not find TensorRT"
)


def quiet_output():
    """Keep TensorFlow's and MLflow's start-up noise off the terminal (what `dlsuite` does unless --verbose)."""
    for key, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(key, value)  # what the user set wins
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Imports `tensorflow` (whoever imports it first: keras, an app) with its native noise filtered from fd 2."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _FilteredLoader(spec.loader)
        return spec


class _FilteredLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = module.__spec__.loader = self.loader  # TensorFlow sees its real loader
        with native_stderr_filtered():
            self.loader.exec_module(module)
            with contextlib.suppress(Exception):
                module.config.list_physical_devices("GPU")  # the CUDA probe, so its "cuInit" error is filtered too


@contextlib.contextmanager
def native_stderr_filtered():
    """Send fd 2 to a temporary file; afterwards write back every line that is not NATIVE_NOISE."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines = capture.read().decode(errors="replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not NATIVE_NOISE.search(line)))
            sys.stderr.flush()
