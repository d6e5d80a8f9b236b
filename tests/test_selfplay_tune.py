"""`dlsuite tune` on a self-play task: two trials of tic-tac-toe's smoke preset through the CLI, against a
temporary store. The objective is the task's monitor, `eval_score` (the score against the first opponent,
exhaustive minimax, logged at each evaluation), so every trial's value is a score in [0, 1] and the best of its
logged history; the winner's config names the searched values."""

import math

import pytest
import yaml

from tests.conftest import new_store, run_cli, tune_outcome


def test_tune_tictactoe_alphazero_searches_on_the_evaluation_score(tmp_path, empty_store):
    uri = new_store(empty_store, tmp_path / "mlruns")
    result = run_cli("tune", "gaming_rl", "--task", "tictactoe-alphazero", "--preset", "smoke",
                     "--search", "c_puct=0.5..3:log", "--search", "simulations=4|8", "--trials", 2,
                     "--tracking-uri", uri, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "objective maximize eval_score (the task's evaluation each epoch)" in result.stdout

    client, parent, rows = tune_outcome(result.stdout, uri)
    assert parent.info.status == "FINISHED"
    best = parent.data.metrics["best_eval_score"]
    assert [row["state"] for row in rows] == ["COMPLETE", "COMPLETE"]
    assert best == pytest.approx(max(row["value"] for row in rows))
    for row in rows:  # each trial is a whole self-play run; its objective is the best evaluation it logged
        trial = client.get_run(row["run_id"])
        assert trial.info.status == "FINISHED"
        history = [metric.value for metric in client.get_metric_history(row["run_id"], "eval_score")]
        assert history and all(0 <= value <= 1 for value in history)
        assert math.isfinite(row["value"]) and row["value"] == pytest.approx(max(history))
        assert trial.data.params["simulations"] in ("4", "8")
        assert 0.5 <= float(trial.data.params["c_puct"]) <= 3

    best_config = yaml.safe_load(open(client.download_artifacts(parent.info.run_id, "best_config.yaml",
                                                                str(tmp_path))))
    assert (best_config["task"], best_config["preset"], best_config["config"]["game"]) == (
        "tictactoe-alphazero", "smoke", "tictactoe")
    winners = [client.get_run(row["run_id"]).data.params for row in rows if row["value"] == best]
    chosen = (str(best_config["config"]["simulations"]), best_config["config"]["c_puct"])
    assert chosen in [(params["simulations"], pytest.approx(float(params["c_puct"]))) for params in winners]
