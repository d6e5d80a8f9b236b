"""Failures a user meets end cleanly: one line, the right exit code, the run's status and reason recorded.

NaN configs (exit 2), a diverging loss (FAILED, exit 1, nothing exported), corrupt data files and
tracking URIs (exit 2), `dlsuite ui` on a busy port (the rest of `ui`: test_ui.py), interrupts (130/143),
dependent defaults, quiet TensorFlow start-up and the run's time estimate.
"""

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
import typing

import mlflow
import numpy as np
import pytest

from pipelines import catalog, cli, quiet
from shared import callbacks as shared_callbacks
from shared import config as config_lib
from shared import tracking
from shared.errors import ConfigError, DataError, TrainingDiverged, UsageError
from tests.conftest import REPO, free_port, run_cli, runs_in

TINY = ["--preset", "smoke", "--set", "epochs=4", "--set", "max_train_examples=512", "--set", "max_test_examples=128",
        "--set", "early_stopping_patience=0"]


def _one_error_line(result, code):
    assert result.returncode == code, (result.returncode, result.stdout[-2000:], result.stderr[-3000:])
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("dlsuite: error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


# === 1. NaN and infinities in configs ===


def _float_fields():
    """(app, task, field, value) for every float field (plain, optional or a tuple of floats) of every task."""
    cases = []
    for app in catalog.app_names():
        for task, spec in catalog.tasks_of(app).items():
            for name, hint in typing.get_type_hints(spec.config_class).items():
                args = typing.get_args(hint)
                if hint is float or (type(None) in args and float in args):
                    cases += [(app, task, name, "nan"), (app, task, name, "inf")]
                elif typing.get_origin(hint) is tuple and args and args[0] is float:
                    cases.append((app, task, name, "1.0,nan"))
    return cases


@pytest.mark.parametrize(("app", "task", "key", "value"), _float_fields())
def test_every_float_field_refuses_nan_and_infinity(app, task, key, value):
    spec = catalog.tasks_of(app)[task]
    with pytest.raises(ConfigError, match=rf"Invalid value for config key {key}\. Received: {key}=.*(nan|inf)\. "
                                          rf"Expected (a finite number|a list of finite numbers)\. "
                                          rf"Fix it with --set {key}="):
        config_lib.apply_overrides(spec.preset("default"), {key: value}, "from --set")


def test_nan_message_suggests_the_default():
    from apps.vision.classification.config import default

    with pytest.raises(ConfigError, match=r"^Invalid value for config key learning_rate\. Received: learning_rate=nan\. "
                                          r"Expected a finite number\. Fix it with --set learning_rate=0\.001\.$"):
        config_lib.apply_overrides(default(), {"learning_rate": "nan"}, "from --set")
    with pytest.raises(ConfigError, match=r"Received: dropout_rate=inf\. Expected a finite number"):
        dataclasses.replace(default(), dropout_rate=float("inf"))  # built directly, not only through --set


@pytest.mark.parametrize("pair", ["learning_rate=nan", "dropout_rate=nan", "learning_rate=inf"])
def test_cli_refuses_non_finite_values(pair, tracking_uri):
    key = pair.split("=")[0]
    line = _one_error_line(run_cli("train", "vision", "--set", pair, "--tracking-uri", tracking_uri), 2)
    assert f"Invalid value for config key {key}. Received: {pair}. Expected a finite number" in line
    assert f"Fix it with --set {key}=" in line
    assert runs_in(tracking_uri) == []


# === 2. A diverging loss fails the run ===


def _tiny_model(learning_rate):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate), loss="mse")
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    return model, x, x.sum(axis=1, keepdims=True) * 100


def test_nan_guard_raises_at_the_diverging_batch():
    model, x, y = _tiny_model(1e30)
    with pytest.raises(TrainingDiverged) as caught:
        model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[shared_callbacks.NanGuard()])
    message = str(caught.value)
    assert message.startswith("Training diverged: the loss became ")
    assert " of epoch 1. Received: loss=" in message and "with learning_rate=1e+30" in message
    assert "Expected a finite loss. Fix: lower the learning rate, e.g. --set learning_rate=1e+29" in message
    assert not isinstance(caught.value, UsageError)


def test_nan_guard_passes_finite_losses():
    model, x, y = _tiny_model(1e-3)
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[shared_callbacks.NanGuard()])
    assert len(history.history["loss"]) == 2


def test_standard_callbacks_guard_against_nan_and_raise():
    callbacks = shared_callbacks.standard_callbacks("val_loss", "min", 5)
    assert any(isinstance(callback, shared_callbacks.NanGuard) for callback in callbacks)
    assert not any(type(callback).__name__ == "TerminateOnNaN" for callback in callbacks)


def test_rl_uses_the_same_nan_guard():
    from apps.gaming_rl.tasks.dqn import DQNTask
    from apps.gaming_rl.config import TASKS

    config = TASKS["cartpole-dqn"].preset("smoke")
    callbacks = DQNTask().callbacks(config)
    guards = [callback for callback in callbacks if isinstance(callback, shared_callbacks.NanGuard)]
    assert len(guards) == 1 and guards[0].learning_rate == config.learning_rate
    with pytest.raises(TrainingDiverged, match=rf"batch 8 of epoch 1\. Received: loss=nan with "
                                               rf"learning_rate={config.learning_rate:g}\."):
        guards[0].on_train_batch_end(7, {"loss": float("nan")})  # what apps.gaming_rl.loop calls after an update


def test_diverged_fit_ends_the_run_failed_with_the_reason(tracking_uri):
    model, x, y = _tiny_model(1e30)
    with pytest.raises(TrainingDiverged):
        with tracking.tracked_run("dlsuite-test", tracking_uri) as run:
            model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[shared_callbacks.NanGuard()])
    finished = mlflow.tracking.MlflowClient().get_run(run.info.run_id)
    assert finished.info.status == "FAILED"
    assert finished.data.tags["failure_reason"].startswith("TrainingDiverged: Training diverged: the loss became")


def test_cli_prints_training_diverged_on_one_line_and_exits_1(monkeypatch, capsys):
    import pipelines.train

    def diverge(**kwargs):
        raise TrainingDiverged("Training diverged: the loss became nan at batch 3 of epoch 1.")

    monkeypatch.setattr(pipelines.train, "train", diverge)
    assert cli.main(["train", "vision", "--verbose"]) == 1
    assert capsys.readouterr().err == "dlsuite: error: Training diverged: the loss became nan at batch 3 of epoch 1.\n"


def test_diverging_training_fails_and_exports_nothing(tracking_uri, tmp_path, fashion_mnist_dir):
    exports = tmp_path / "exports"
    result = run_cli("train", "vision", "--preset", "smoke", "--set", "learning_rate=1e30", "--set", "optimizer=sgd",
                     "--data-dir", fashion_mnist_dir, "--tracking-uri", tracking_uri, "--export-dir", exports)
    line = _one_error_line(result, 1)
    assert "Training diverged: the loss became" in line and "--set learning_rate=1e+29" in line
    assert not exports.exists()
    (run,) = runs_in(tracking_uri)
    assert run.info.status == "FAILED"
    assert run.data.tags["failure_reason"].startswith("TrainingDiverged: Training diverged")


# === 3. Corrupt data files and tracking URIs: one line, exit 2 ===


def _corrupt_copy(tmp_path, how, source):
    data_dir = tmp_path / "fashion_mnist"
    data_dir.mkdir()
    for path in source.iterdir():
        (data_dir / path.name).write_bytes(path.read_bytes())
    labels = data_dir / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(labels.read_bytes())
    if how == "flipped":
        middle = len(raw) // 2
        raw[middle:middle + 40] = bytes(byte ^ 0xFF for byte in raw[middle:middle + 40])
    else:
        raw = raw[:len(raw) // 2]
    labels.write_bytes(bytes(raw))
    return data_dir, labels


@pytest.mark.parametrize(("how", "error"), [("flipped", "zlib.error: Error -3 while decompressing data"),
                                            ("cut", "EOFError: Compressed file ended")])
def test_gzip_corrupted_mid_stream_is_a_data_error(tmp_path, how, error, fashion_mnist_dir):
    from apps.vision.classification import idx

    data_dir, labels = _corrupt_copy(tmp_path, how, fashion_mnist_dir)
    with pytest.raises(DataError, match=rf"^Corrupt gzip file {labels}: .* Received: {error}.*Expected a complete "
                                        r"gzip stream\. Fix: re-download"):
        idx.read_idx(labels, 1)


def test_cli_reports_a_corrupt_gzip_file(tracking_uri, tmp_path, fashion_mnist_dir):
    data_dir, labels = _corrupt_copy(tmp_path, "flipped", fashion_mnist_dir)
    result = run_cli("train", "vision", "--preset", "smoke", "--data-dir", data_dir, "--tracking-uri", tracking_uri)
    assert f"Corrupt gzip file {labels}" in _one_error_line(result, 2)
    assert runs_in(tracking_uri) == []


@pytest.mark.parametrize("line", ["not-a-checksum recordings/0_george_0.wav", "0" * 64, "abc  recordings/x.wav"])
def test_malformed_sha256sums_line_is_a_data_error(tmp_path, line):
    from apps.speech import fsdd

    folder = tmp_path / "fsdd"
    (folder / "recordings").mkdir(parents=True)
    (folder / "SHA256SUMS").write_text(f"{'a' * 64}  UPSTREAM_README.md\n\n{line}\n")
    (folder / "UPSTREAM_README.md").write_text("readme")
    with pytest.raises(DataError, match=rf"^Malformed line in {folder / 'SHA256SUMS'}, line 3\. Received: "
                                        rf"'{line[:20]}.*Expected `sha256sum` output: 64 hex digits"):
        fsdd.check_source(folder)


def test_every_shared_dataset_checksum_file_parses(data_root):
    from shared import checksums

    for sums in sorted(data_root.glob("*/SHA256SUMS")):
        assert checksums.read_sums(sums), sums


@pytest.mark.parametrize(("where", "problem"), [("no/such/dir/s.json", "its folder does not exist"),
                                               ("a-file/s.json", "its folder does not exist"),
                                               ("", "it is a folder")])
def test_bad_summary_json_path_exits_2_before_any_run_opens(tracking_uri, tmp_path, where, problem):
    """It was found after training: the run ended FAILED with its export already published."""
    (tmp_path / "a-file").write_text("")
    path = tmp_path / where
    result = run_cli("train", "recommender", "--task", "rating", "--preset", "smoke", "--tracking-uri", tracking_uri,
                     "--export-dir", tmp_path / "exports", "--summary-json", path)
    line = _one_error_line(result, 2)
    assert f"Cannot write the summary file: {problem}. Received: --summary-json {path}" in line, line
    assert not runs_in(tracking_uri) and not (tmp_path / "exports").exists()


def test_unknown_tracking_uri_scheme_names_the_supported_ones(tracking_uri):
    with pytest.raises(UsageError, match=r"^Unsupported MLflow tracking URI scheme\. Received: --tracking-uri "
                                         r"foo://bar \(scheme 'foo'\)\. Expected a local path or one of the schemes: "
                                         r".*file, http, https, .*postgresql, sqlite"):
        tracking.setup("foo://bar")
    line = _one_error_line(run_cli("train", "vision", "--preset", "smoke", "--tracking-uri", "foo://bar"), 2)
    assert "Unsupported MLflow tracking URI scheme" in line and "sqlite" in line and "databricks" in line


def test_unreachable_tracking_server_fails_fast():
    port, started = free_port(), time.monotonic()
    with pytest.raises(UsageError, match=rf"^No MLflow tracking server answers\. Received: --tracking-uri "
                                         rf"http://127\.0\.0\.1:{port} \("):
        tracking.setup(f"http://127.0.0.1:{port}")
    assert time.monotonic() - started < 10  # MLflow itself retries for minutes


# === 4. dlsuite ui ===


def test_ui_refuses_a_busy_port(tracking_uri):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        started = time.monotonic()
        result = run_cli("ui", "--port", port, "--tracking-uri", tracking_uri, timeout=60)
    line = _one_error_line(result, 2)
    assert f"Cannot listen on 127.0.0.1:{port}: Address already in use. Received: --port {port}" in line
    assert f"Fix: pick another one (e.g. --port {port + 1})" in line
    assert time.monotonic() - started < 20


# === 5. Dependent defaults follow what the user set ===


def test_epochs_below_the_presets_warmup_lowers_it_with_a_note(capsys):
    from apps.vision.classification.config import default

    assert default().warmup_epochs == 1
    config = config_lib.apply_overrides(default(), {"epochs": "1"}, "from --set")
    assert (config.epochs, config.warmup_epochs) == (1, 0)
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("dlsuite: note: warmup_epochs lowered from 1 (the preset's) to 0 to fit epochs=1")


@pytest.mark.parametrize("layers", [[{"epochs": "1", "warmup_epochs": "1"}], [{"warmup_epochs": 1}, {"epochs": 1}]])
def test_warmup_set_by_the_user_is_kept_and_checked(layers):
    from apps.vision.classification.config import default

    config = default()
    with pytest.raises(ConfigError, match=r"Received: warmup_epochs=1 with epochs=1\. Expected a number in \[0, 0\]"):
        for layer in layers:  # --set both, or --config then --set
            config = config_lib.apply_overrides(config, layer, "from --set")


# === 6. Messages: tuples, interrupts ===


def test_malformed_tuple_names_the_format():
    from apps.vision.classification.config import default

    with pytest.raises(ConfigError, match=r"Received: filters='16,abc'\. Expected a comma-separated list of int, "
                                          r"e\.g\. filters=32,64,128\."):
        config_lib.apply_overrides(default(), {"filters": "16,abc"}, "from --set")


@pytest.mark.parametrize(("signum", "code", "reason"), [
    (signal.SIGTERM, 143, "interrupted: SIGTERM"),
    # large: SIGTERM's run above takes the same path (StopOnSignal -> Interrupted -> a KILLED run, its exit code);
    # SIGINT's own parts run in-process in test_a_signal_in_training_raises_at_the_next_batch_boundary (below)
    # and tests/test_tracking.py::test_interrupt_marks_run_killed. A TensorFlow process and a training less.
    pytest.param(signal.SIGINT, 130, "interrupted: SIGINT (Ctrl-C)", marks=pytest.mark.large)])
def test_signal_during_training(tracking_uri, tmp_path, signum, code, reason, fashion_mnist_dir):
    command = [sys.executable, "-m", "pipelines.cli", "train", "vision", *TINY, "--data-dir", str(fashion_mnist_dir),
               "--tracking-uri", tracking_uri, "--export-dir", str(tmp_path / "exports")]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # A shell runs background jobs (`cmd &`) with SIGINT ignored, and an ignored signal stays ignored across
    # exec; Python then installs no KeyboardInterrupt handler. Ctrl-C comes from a foreground terminal, so
    # the child starts with SIGINT at its default, whatever the test runner inherited.
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = []
    try:
        for line in process.stdout:
            seen.append(line)
            if line.startswith("Epoch 2/4"):
                process.send_signal(signum)
                break
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    stderr = process.stderr.read()
    assert process.returncode == code, "".join(seen) + stderr
    assert stderr.strip().splitlines()[-1] == f"dlsuite: interrupted by {reason.split(': ', 1)[1]}"
    (run,) = runs_in(tracking_uri)
    assert (run.info.status, run.data.tags["failure_reason"]) == ("KILLED", reason)


def test_a_signal_in_training_raises_at_the_next_batch_boundary():
    from shared.callbacks import StopOnSignal
    from shared.errors import Interrupted

    # pytest started in the background by a non-interactive shell (`cmd &`) inherits SIGINT ignored, which
    # StopOnSignal rightly leaves alone; this test is about a SIGINT that is not ignored.
    ignored = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _signals_raise_at_batch_boundaries(StopOnSignal, Interrupted)
    finally:
        signal.signal(signal.SIGINT, ignored)


def _signals_raise_at_batch_boundaries(StopOnSignal, Interrupted):
    stop = StopOnSignal()
    with stop.installed():
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.pending == "SIGTERM"  # recorded, not raised where it landed
        with pytest.raises(Interrupted, match="SIGTERM") as caught:
            stop.on_train_batch_end(0)
        assert caught.value.exit_code == 143
        with pytest.raises(Interrupted):  # a second signal while one is pending: at once
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        stop.pending = None
    assert signal.getsignal(signal.SIGTERM) is not stop.handle and signal.getsignal(signal.SIGINT) is not stop.handle
    with pytest.raises(Interrupted, match="SIGINT"):  # after the last batch: when the block ends
        with StopOnSignal().installed():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.1)


# === 7. Weight decay zero is zero ===


def test_adamw_weight_decay_zero_means_zero():
    from apps.vision.classification.config import default
    from shared.optimizers import build_optimizer, get_optimizer

    assert get_optimizer("adamw", 1e-3, weight_decay=0.0).weight_decay == 0.0
    assert get_optimizer("adamw", 1e-3, weight_decay=1e-4).weight_decay == pytest.approx(1e-4)
    config = config_lib.apply_overrides(default(), {"weight_decay": "0"}, "from --set")
    assert config.optimizer == "adamw" and build_optimizer(config, steps_per_epoch=10).weight_decay == 0.0


# === 8. What a CPU user sees ===

IMPORT_TF = ("from pipelines import quiet\n"
             "{setup}\n"
             "import tensorflow as tf\n"
             "print(float(tf.reduce_sum(tf.ones([2]))))\n")
NOISE = ("absl::InitializeLog", "oneDNN", "cuda drivers", "cuInit", "cpu_feature_guard", "I0000", "E0000")


def _import_tensorflow(setup):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("TF_", "MLFLOW_"))}
    return subprocess.run([sys.executable, "-c", IMPORT_TF.format(setup=setup)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def test_quiet_cli_hides_tensorflow_start_up_lines():
    result = _import_tensorflow("quiet.quiet_output()")
    assert result.returncode == 0 and result.stdout == "2.0\n", result.stderr
    assert not [line for line in result.stderr.splitlines() if any(noise in line for noise in NOISE)], result.stderr


def test_native_filter_keeps_other_lines(capfd):
    with quiet.native_stderr_filtered():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
                    b"I0000 00:00:1795311771.694388    3589 port.cc:153] oneDNN custom operations are on.\n"
                    b"E0000 00:00:1795311774.656214    3589 cuda_platform.cc:52] failed call to cuInit: INTERNAL\n"
                    b"E0000 00:00:1795311774.656214    3589 some_op.cc:12] a real error\n"
                    b"a Python warning\n")
    assert capfd.readouterr().err == "E0000 00:00:1795311774.656214    3589 some_op.cc:12] a real error\na Python warning\n"


def test_verbose_is_a_global_flag_and_a_verb_flag():
    parser = cli._build_parser()
    assert parser.parse_args(["--verbose", "train", "vision"]).verbose
    assert parser.parse_args(["train", "vision", "--verbose"]).verbose
    assert not parser.parse_args(["train", "vision"]).verbose


def test_offscreen_rendering_prints_no_display_error():
    code = ("from apps.gaming_rl import data\n"
            "env = data.make_env('CartPole-v1', render_mode='rgb_array')\n"
            "env.reset(seed=0)\n"
            "print(env.render().shape)\n")
    env = {key: value for key, value in os.environ.items() if key not in ("SDL_VIDEODRIVER", "XDG_RUNTIME_DIR")}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout == "(400, 600, 3)\n", result.stderr
    assert "XDG_RUNTIME_DIR" not in result.stderr


def test_run_progress_prints_elapsed_and_time_left(monkeypatch):
    clock = iter([0.0, 40.0, 40.0, 82.0, 82.0, 120.0])
    monkeypatch.setattr(shared_callbacks.time, "perf_counter", lambda: next(clock))
    lines = []
    progress = shared_callbacks.RunProgress(print_fn=lines.append)
    progress.set_params({"epochs": 11})
    for epoch in range(3):
        progress.on_epoch_begin(epoch)
        progress.on_epoch_end(epoch, {})
    progress.on_train_end()
    assert lines == ["epoch 1/11 done in 40 s; about 7 min left",  # 10 x 40 s
                     "epoch 2/11 done in 42 s; about 6 min left",  # 9 x 41 s
                     "epoch 3/11 done in 38 s; training took 2 min"]  # stopped early after 120 s
    assert any(isinstance(callback, shared_callbacks.RunProgress)
               for callback in shared_callbacks.standard_callbacks("val_loss", "min", 0))


def test_run_progress_estimates_within_a_wall_time_budget(monkeypatch):
    # A 30-minute budget over 100 epochs of 23 minutes: what is left of the budget, not 38 hours.
    clock = iter([0.0, 1380.0, 1380.0, 1837.0])
    monkeypatch.setattr(shared_callbacks.time, "perf_counter", lambda: next(clock))
    lines = []
    progress = shared_callbacks.RunProgress(print_fn=lines.append, max_seconds=1800)
    progress.set_params({"epochs": 100})
    for epoch in range(2):
        progress.on_epoch_begin(epoch)
        progress.on_epoch_end(epoch, {})
    progress.on_train_end()
    assert lines == ["epoch 1/100 done in 23 min; about 7 min left", "epoch 2/100 done in 8 min; training took 31 min"]
