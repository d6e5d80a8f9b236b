"""A Connect Four self-play smoke run through `dlsuite train`, SIGKILLed after its first iteration and resumed:
it continues the same MLflow run, iteration count and replay buffer; its export answers boards in a fresh
process (policy 0 on a full column, summing to 1, any batch size), refuses impossible boards with the reason
(also as HTTP 400 from a real `dlsuite serve`), and `dlsuite play` plays it on a scripted terminal."""

import json
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import mlflow
import numpy as np
import pytest

from apps.gaming_rl.boards import CONNECT_FOUR
from tests.conftest import (REPO, cli_env, free_port, run_cli, sigkill_at, start_cli, start_cli_server, stop_server,
                            wait_for_http)

NAME = "gaming_rl-connect4-alphazero"


def _boards():
    """Legal positions: the empty board, one with a full column 2 (six stones, three each) and column 0 holding
    one stone; and the impossible ones, each with the words of its refusal."""
    empty = CONNECT_FOUR.initial_boards(1)[0]
    full_column = empty.copy()
    full_column[:, 2] = [1, -1, 1, -1, 1, -1]
    full_column[5, 0] = -1
    values, counts, floating, line = (empty.copy() for _ in range(4))
    values[5, 0] = 3
    counts[5, :2] = 1
    floating[2, 4] = -1
    line[5, :4], line[4, :4] = -1, 1
    line[4, 3] = 0
    line[3, 0] = 1
    illegal = {"values outside -1, 0, 1": values, "impossible number of stones": counts,
               "stone above an empty cell": floating, "4 in a row": line}
    return np.stack([empty, full_column]), illegal


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(export folder, tracking URI, run id, the resumed run's output): killed after iteration 1, resumed."""
    folder = tmp_path_factory.mktemp("connect4")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    common = ["--tracking-uri", uri, "--export-dir", folder / "exports"]
    process = start_cli("train", "gaming_rl", "--task", "connect4-alphazero", "--preset", "smoke",
                        "--set", "iterations=3", *common)
    killed = "".join(sigkill_at(process, "checkpoint saved at iteration 1", timeout=300))
    assert process.returncode == -signal.SIGKILL, killed[-3000:]
    run_id = re.search(r"dlsuite: run (\w+)", killed).group(1)
    result = run_cli("train", "gaming_rl", "--resume", run_id, *common, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return folder / "exports" / NAME, uri, run_id, result.stdout


def test_killed_run_resumes_the_same_run_iterations_and_buffer(trained):
    _folder, uri, run_id, output = trained
    assert "resumed from checkpoint at iteration 1 (4 games, " in output
    assert "iteration 1/3" not in output and re.search(r"iteration 3/3 .*score_vs_mcts", output), output[-2000:]
    client = mlflow.tracking.MlflowClient(uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and "test_score" in run.data.metrics

    def history(key):
        return [metric.value for metric in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)]

    assert history("iteration") == [1.0, 2.0, 3.0]  # one MLflow run holds every iteration
    assert history("self_play_games") == [4.0, 8.0, 12.0]
    sizes = history("replay_size")
    assert sizes[0] < sizes[1] < sizes[2]  # the buffer kept the positions of the games before the kill


FRESH_PROCESS = """
import json, sys
import numpy as np
import tensorflow as tf
serving = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
legal = np.asarray(json.loads(sys.argv[2]), np.int8)
answers = {}
for size in (1, 2, 33):
    boards = np.concatenate([legal] * 17)[:size]
    outputs = serving(boards=tf.constant(boards))
    answers[size] = {key: value.numpy().tolist() for key, value in outputs.items()}
refusals = {}
for name, board in json.loads(sys.argv[3]).items():
    try:
        serving(boards=tf.constant(np.asarray([board] * 3, np.int8)))
        refusals[name] = None
    except tf.errors.InvalidArgumentError as error:
        refusals[name] = error.message
print(json.dumps({"answers": answers, "refusals": refusals}))
"""


def test_export_answers_boards_in_a_fresh_process_and_refuses_impossible_ones(trained):
    legal, illegal = _boards()
    version_dir = sorted(trained[0].iterdir())[-1]
    result = subprocess.run([sys.executable, "-c", FRESH_PROCESS, str(version_dir), json.dumps(legal.tolist()),
                             json.dumps({name: board.tolist() for name, board in illegal.items()})],
                            capture_output=True, text=True, env=cli_env(), cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    for size, outputs in found["answers"].items():
        policy, value = np.asarray(outputs["policy"]), np.asarray(outputs["value"])
        assert policy.shape == (int(size), 7) and value.shape == (int(size),)
        np.testing.assert_allclose(policy.sum(axis=1), 1.0, atol=1e-5)
        assert np.all(np.abs(value) <= 1.0)
    policy = np.asarray(found["answers"]["2"]["policy"])
    assert policy[1, 2] == 0.0 and np.all(policy[0] > 0) and np.all(np.delete(policy[1], 2) > 0)
    for words, message in found["refusals"].items():
        assert message is not None and "Invalid board: boards[0] " in message and words in message, (words, message)


def test_serve_answers_400_with_the_reason_for_an_impossible_board(trained):
    legal, illegal = _boards()
    port = free_port()
    process = start_cli_server("serve", "--model-dir", trained[0], "--port", port)
    base = f"http://127.0.0.1:{port}/v1/models/{NAME}"
    try:
        wait_for_http(base, process)
        status, body = _post(f"{base}:predict", {"instances": [{"boards": board.tolist()} for board in legal]})
        assert status == 200, body
        assert body["predictions"][1]["policy"][2] == 0.0
        status, body = _post(f"{base}:predict", {"instances": [{"boards": legal[0].tolist()},
                                                               {"boards": illegal["stone above an empty cell"].tolist()}]})
        assert status == 400, body
        assert "boards[1] has a stone above an empty cell" in body["error"], body
    finally:
        stop_server(process)


def _post(url, body):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_play_refuses_illegal_moves_and_asks_again(trained):
    result = subprocess.run([sys.executable, "-m", "pipelines.cli", "play", "--model-dir", str(trained[0]),
                             "--first", "human", "--simulations", "4"], input="7\nthree\n3\nq\n", capture_output=True,
                            text=True, env=cli_env(), cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Illegal move. Received: '7'. Expected a column 0-6. Try again." in result.stdout
    assert "Illegal move. Received: 'three'" in result.stdout
    assert re.search(r"agent plays [0-6]", result.stdout) and result.stdout.rstrip().endswith("quit")
    assert ". . . X . . .\n0 1 2 3 4 5 6" in result.stdout  # the person's stone at the bottom of column 3


def test_play_refuses_a_full_column():
    from pipelines.play import _ask

    board = CONNECT_FOUR.initial_boards(1)[0]
    board[:, 2] = [1, -1, 1, -1, 1, -1]
    answers, said = iter(["2", "4"]), []
    assert _ask(CONNECT_FOUR, board, lambda prompt: next(answers), said.append, "a column 0-6") == 4
    assert said == ["Illegal move. Received: 2 (that column is full). Expected one of: 0, 1, 3, 4, 5, 6. Try again."]
