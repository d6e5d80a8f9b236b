"""`dlsuite serve --model models:/NAME@champion`: a real server on 127.0.0.1 follows the registry's champion
without a restart, and keeps answering while it switches. Two tiny real vision runs on a SQLite store."""

import json
import shutil
import threading
import time
import urllib.request

import pytest

from pipelines.promote import promote
from pipelines.serve import serve
from pipelines.train import train
from shared.errors import UsageError
from tests.conftest import free_port, post_json, start_cli_server, stop_server, wait_for_http

NAME = "vision-classification"
TINY = ["max_test_examples=128", "early_stopping_patience=0", "max_train_examples=256", "epochs=1"]
POLL_SECONDS = 1
SWITCH_SECONDS = 30  # the README's promise: --poll-seconds, plus the new version's load (seconds for a small model)


def _get(url):
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def _instance(metadata):
    """One all-zeros instance of the serving signature's input shape (without the batch dimension)."""
    inputs = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]["inputs"]
    (spec,) = inputs.values()
    dims = [int(dim["size"]) for dim in spec["tensor_shape"]["dim"]][1:]

    def zeros(shape):
        return [zeros(shape[1:]) for _ in range(shape[0])] if shape else 0.0

    return zeros(dims)


def test_server_follows_the_champion_without_a_restart(tracking_uri, tmp_path, fashion_mnist_dir):
    with pytest.raises(UsageError, match=r"^Invalid model URI\. Received: --model models:/x@\. Expected"):
        serve(model_uri="models:/x@")
    with pytest.raises(UsageError, match=r"^Say what to serve once\. Received: --model-dir and --model\."):
        serve(model_dir=str(tmp_path), model_uri=f"models:/{NAME}@champion")
    with pytest.raises(UsageError, match=r"^No registered model of that name\. Received: nope\."):
        serve(model_uri="models:/nope@champion")
    unreachable = f"http://127.0.0.1:{free_port()}"  # in-process: the server below is the CLI's real run
    with pytest.raises(UsageError, match=rf"^No MLflow tracking server answers\. Received: --tracking-uri "
                                         rf"{unreachable} "):
        serve(model_uri=f"models:/{NAME}@champion", tracking_uri=unreachable)
    for _ in range(2):
        train("vision", preset="smoke", data_dir=str(fashion_mnist_dir), export_root=str(tmp_path / "exports"),
              overrides=TINY)
    with pytest.raises(UsageError, match=rf"^Model {NAME} has no alias champion\. Received: --model "
                                         rf"models:/{NAME}@champion\. Expected one of: none yet\. Fix: `dlsuite promote"):
        serve(model_uri=f"models:/{NAME}@champion")
    with pytest.raises(UsageError, match=rf"^Model {NAME} has no version 5\. Received: --version 5"):
        serve(model_uri=f"models:/{NAME}/5")
    promote(NAME, 1)
    port = free_port()
    base = f"http://127.0.0.1:{port}/v1/models/{NAME}"
    server = start_cli_server("serve", "--model", f"models:/{NAME}@champion", "--poll-seconds", POLL_SECONDS,
                              "--port", port, "--tracking-uri", tracking_uri)
    statuses, stop = [], threading.Event()
    try:
        wait_for_http(base, server)
        assert [entry["version"] for entry in _get(base)["model_version_status"]] == ["1"]
        metadata = _get(f"{base}/metadata")
        assert metadata["model_spec"] == {"name": NAME, "signature_name": "", "version": "1"}
        body = {"instances": [_instance(metadata)]}
        status, answer = post_json(f"{base}:predict", body)
        assert status == 200 and len(answer["predictions"]) == 1
        assert post_json(f"{base}/versions/1:predict", body)[0] == 200

        def hammer():
            while not stop.is_set():
                statuses.append(post_json(f"{base}:predict", body)[0])

        client = threading.Thread(target=hammer)
        client.start()
        promote(NAME, 2, force=True)
        promoted = time.monotonic()
        while _get(f"{base}/metadata")["model_spec"]["version"] != "2":
            assert time.monotonic() - promoted < SWITCH_SECONDS, f"still version 1 after {SWITCH_SECONDS} s"
            time.sleep(0.1)
        switch_seconds = time.monotonic() - promoted
        time.sleep(0.5)  # requests on the new version too
        stop.set()
        client.join(timeout=60)
        print(f"switched to version 2 in {switch_seconds:.1f} s; {len(statuses)} requests meanwhile")
        assert [entry["version"] for entry in _get(base)["model_version_status"]] == ["2"]
        assert post_json(f"{base}/versions/2:predict", body)[0] == 200
        assert post_json(f"{base}/versions/1:predict", body)[0] == 404  # the old version is dropped
        assert len(statuses) > 10 and set(statuses) == {200}
        shutil.rmtree(tmp_path / "exports" / NAME / "1")  # a champion that cannot load: only a warning
        promote(NAME, rollback=True)
        time.sleep(4 * POLL_SECONDS)
        assert _get(f"{base}/metadata")["model_spec"]["version"] == "2"
        assert post_json(f"{base}:predict", body)[0] == 200
    finally:
        stop.set()
        stop_server(server)
    output = server.stdout.read()
    assert f"dlsuite: models:/{NAME}@champion is now version 2 (was 1)" in output, output
    assert (f"dlsuite: warning: cannot follow models:/{NAME}@champion (UsageError: Run " in output
            and "still serving version 2" in output), output
