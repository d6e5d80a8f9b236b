"""The CLI: fast paths that never import TensorFlow, and bad input that fails cleanly (exit 2)."""

import json
import subprocess
import sys
import urllib.request

import pytest

from tests.conftest import REPO, free_port, run_cli, runs_in, start_cli_server, stop_server, wait_for_http

NO_TENSORFLOW = (
    "import sys, io, contextlib\n"
    "from pipelines import cli\n"
    "out = io.StringIO()\n"
    "with contextlib.redirect_stdout(out):\n"
    "    try:\n"
    "        code = cli.main({argv})\n"
    "    except SystemExit as exit:\n"
    "        code = exit.code\n"
    "heavy = sorted(m for m in ('tensorflow', 'keras', 'mlflow') if m in sys.modules)\n"
    "print(code, heavy, repr(out.getvalue()))\n"
)


@pytest.mark.parametrize("argv", [["--help"], ["list"], ["train", "--help"], ["tune", "--help"], ["promote", "--help"]])
def test_help_and_list_do_not_import_tensorflow(argv):
    result = subprocess.run([sys.executable, "-c", NO_TENSORFLOW.format(argv=argv)], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    code, heavy, output = result.stdout.strip().split(" ", 2)
    assert code == "0", result.stderr
    assert heavy == "[]", f"{argv} imported {heavy}"
    assert "vision" in output


def test_list_shows_apps_tasks_and_presets():
    result = run_cli("list")
    assert result.returncode == 0, result.stderr
    assert "vision:" in result.stdout
    assert "--task classification" in result.stdout and "smoke" in result.stdout
    from pipelines import catalog

    assert all(f"{app}:" in result.stdout for app in catalog.APPS)
    task_lines = [line for line in result.stdout.splitlines() if line.startswith("  --task ")]
    assert len(task_lines) == sum(len(catalog.tasks_of(app)) for app in catalog.APPS)
    width = max(len(line.split()[1]) for line in task_lines)  # the descriptions start in one column
    assert {line[len("  --task ") + width:][:1] for line in task_lines} == {" "}
    assert all(line[len("  --task ") + width + 1] != " " for line in task_lines)


def _assert_clean_failure(result, *fragments):
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("dlsuite: error:")]
    assert len(error_lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in error_lines[0], error_lines[0]


def _assert_no_run_left_running(tracking_uri):
    assert all(run.info.status != "RUNNING" for run in runs_in(tracking_uri))


def test_unknown_app(tracking_uri):
    result = run_cli("train", "visoin", "--tracking-uri", tracking_uri)
    _assert_clean_failure(result, "Unknown app", "Received: app='visoin'", "Expected one of: vision", "dlsuite list")
    _assert_no_run_left_running(tracking_uri)


def test_unknown_task(tracking_uri):
    result = run_cli("train", "vision", "--task", "captioning", "--tracking-uri", tracking_uri)
    _assert_clean_failure(result, "Unknown task", "--task captioning", "classification")


def test_unknown_config_key_suggests_the_right_one(tracking_uri):
    result = run_cli("train", "vision", "--preset", "smoke", "--set", "dropout=0.2", "--tracking-uri", tracking_uri)
    _assert_clean_failure(result, "Unknown config key 'dropout'", "Did you mean 'dropout_rate'?")
    _assert_no_run_left_running(tracking_uri)


def test_unknown_key_in_yaml_file(tracking_uri, tmp_path):
    config = tmp_path / "override.yaml"
    config.write_text("epochs: 2\nlearning_rat: 0.1\n")
    result = run_cli("train", "vision", "--config", config, "--tracking-uri", tracking_uri)
    _assert_clean_failure(result, "Unknown config key 'learning_rat'", f"--config {config}", "'learning_rate'")


@pytest.mark.parametrize(
    ("pair", "fragments"),
    [
        ("dropout_rate=1.5", ["dropout_rate=1.5", "Expected a number in [0, 1)"]),
        ("epochs=0", ["epochs=0", "Expected a number in [1, inf]"]),
        ("batch_size=many", ["batch_size='many'", "Expected a value of type int"]),
        ("optimizer=adamax", ["optimizer='adamax'", "Expected one of: adadelta, adagrad, adam, adamw, rmsprop, sgd"]),
        ("activation=relu6", ["activation='relu6'", "leaky_relu"]),
        ("dropout_rate=nan", ["dropout_rate=nan", "Expected a finite number", "Fix it with --set dropout_rate=0.3"]),
        ("filters=16,abc", ["filters='16,abc'", "Expected a comma-separated list of int, e.g. filters=32,64"]),
    ],
)
def test_out_of_range_or_mistyped_values(pair, fragments, tracking_uri):
    result = run_cli("train", "vision", "--set", pair, "--tracking-uri", tracking_uri)
    _assert_clean_failure(result, "Invalid value for config key", *fragments)
    _assert_no_run_left_running(tracking_uri)


def test_missing_data_dir(tracking_uri, tmp_path):
    missing = tmp_path / "nowhere"
    result = run_cli("train", "vision", "--preset", "smoke", "--data-dir", missing, "--tracking-uri", tracking_uri)
    _assert_clean_failure(result, "Data directory not found", f"--data-dir {missing}", "train-images-idx3-ubyte")
    assert runs_in(tracking_uri) == []


def test_data_dir_without_idx_files(tracking_uri, tmp_path):
    result = run_cli("train", "vision", "--preset", "smoke", "--data-dir", tmp_path, "--tracking-uri", tracking_uri)
    _assert_clean_failure(result, "No fashion_mnist data found", "t10k-labels-idx1-ubyte")


def _copy_fashion_mnist(target, source):
    target.mkdir()
    for path in source.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    return target


def test_truncated_idx_file(tracking_uri, tmp_path, fashion_mnist_dir):
    import gzip

    data_dir = _copy_fashion_mnist(tmp_path / "fashion_mnist", fashion_mnist_dir)
    labels = data_dir / "t10k-labels-idx1-ubyte.gz"
    payload = gzip.decompress(labels.read_bytes())
    labels.write_bytes(gzip.compress(payload[:-100]))
    result = run_cli("train", "vision", "--preset", "smoke", "--data-dir", data_dir, "--tracking-uri", tracking_uri)
    _assert_clean_failure(result, str(labels), "truncated", "10008 bytes", "Received: 9908 bytes")
    assert runs_in(tracking_uri) == []


def test_wrong_magic_idx_file(tracking_uri, tmp_path, fashion_mnist_dir):
    import gzip

    data_dir = _copy_fashion_mnist(tmp_path / "fashion_mnist", fashion_mnist_dir)
    images = data_dir / "train-images-idx3-ubyte.gz"
    payload = bytearray(gzip.decompress(images.read_bytes()))
    payload[3] = 0x01  # claims one dimension
    images.write_bytes(gzip.compress(bytes(payload), compresslevel=1))  # level 9 takes ~20 s on 47 MB
    result = run_cli("train", "vision", "--preset", "smoke", "--data-dir", data_dir, "--tracking-uri", tracking_uri)
    _assert_clean_failure(result, str(images), "magic number 0x00000801", "Expected 0x00000803")
    assert runs_in(tracking_uri) == []


def test_unknown_run_id(tracking_uri):
    result = run_cli("evaluate", "--run-id", "0123456789abcdef", "--tracking-uri", tracking_uri)
    _assert_clean_failure(result, "Run not found", "run_id='0123456789abcdef'")


def test_promote_without_a_version_exits_2():
    # The CLI's side of `dlsuite promote` (tests/team/test_registry.py calls promote() in-process).
    result = run_cli("promote", "vision-classification", "--force")
    _assert_clean_failure(result, "Say which version to promote. Received: neither --version nor --rollback.")


def test_ui_serves_the_store_on_localhost(tracking_uri):
    port = free_port()
    server = start_cli_server("ui", "--port", port, "--tracking-uri", tracking_uri)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", server)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/experiments/search?max_results=10",
                                    timeout=10) as response:
            names = [experiment["name"] for experiment in json.loads(response.read())["experiments"]]
        assert "Default" in names  # the UI reads the store we pointed it at
    finally:
        stop_server(server)
