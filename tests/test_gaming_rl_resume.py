"""A killed `dlsuite train gaming_rl` resumes in the same MLflow run and reaches the same result.

Runs the CLI in subprocesses with a tiny cartpole-dqn config: SIGKILL after the second
checkpoint, `--resume RUN_ID`, then an uninterrupted run with the same seed for comparison,
then `dlsuite evaluate` on the exported policy.
"""

import os
import re
import signal
import subprocess
import sys

import mlflow
import numpy as np
import pytest

from tests.conftest import REPO, run_cli

TINY = ["--task", "cartpole-dqn", "--preset", "smoke", "--seed", "7",
        "--set", "total_env_steps=2048", "--set", "eval_interval=256"]


def _kill_after_second_checkpoint(args, stderr_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    with open(stderr_path, "w") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "pipelines.cli", *args], cwd=REPO, env=env,
                                   stdout=subprocess.PIPE, stderr=stderr, text=True)
        lines, checkpoints = [], 0
        for line in process.stdout:
            lines.append(line)
            checkpoints += line.startswith("checkpoint saved at env step")
            if checkpoints == 2:
                process.send_signal(signal.SIGKILL)
                break
        process.wait(timeout=60)
    assert checkpoints == 2, "".join(lines) + open(stderr_path).read()[-3000:]
    return "".join(lines), process.returncode


def _history(client, run_id, key):
    return sorted((metric.step, metric.value) for metric in client.get_metric_history(run_id, key))


@pytest.mark.large  # CI time budget: covered in part by faster tests; run with --run-large
def test_killed_run_resumes_in_the_same_run_and_matches_an_uninterrupted_run(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    common = ["--tracking-uri", uri, "--export-dir", str(tmp_path / "exports")]
    output, returncode = _kill_after_second_checkpoint(["train", "gaming_rl", *TINY, *common], tmp_path / "killed.err")
    assert returncode == -signal.SIGKILL
    run_id = re.search(r"dlsuite: run (\w+)", output).group(1)
    client = mlflow.tracking.MlflowClient(uri)
    assert client.get_run(run_id).info.status == "RUNNING"  # SIGKILL leaves no chance to end the run

    resumed = run_cli("train", "gaming_rl", "--resume", run_id, *common, "--summary-json", tmp_path / "resumed.json")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    step = int(re.search(r"resumed from checkpoint at env step (\d+)", resumed.stdout).group(1))
    assert 512 <= step < 2048
    first_step_after_resume = int(re.findall(r"env steps (\d+)/2048", resumed.stdout)[0])
    assert first_step_after_resume == step + 256  # continues, no restart from 0
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and "failure_reason" not in run.data.tags
    logged_steps = sorted({step for step, _value in _history(client, run_id, "eval_return_mean")})
    assert logged_steps == list(range(256, 2049, 256))  # one MLflow run holds the whole curve

    reference = run_cli("train", "gaming_rl", *TINY, *common, "--summary-json", tmp_path / "reference.json")
    assert reference.returncode == 0, reference.stderr[-3000:]
    reference_id = re.search(r"run id:\s+(\w+)", reference.stdout).group(1)
    # Same seed, checkpointed RNGs and environments: the same evaluation curve and test result.
    assert dict(_history(client, run_id, "eval_return_mean")) == dict(_history(client, reference_id,
                                                                               "eval_return_mean"))
    for key in ("test_return_mean", "test_episode_length_mean"):
        assert run.data.metrics[key] == client.get_run(reference_id).data.metrics[key]
    from shared.export import load_serving

    observations = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    resumed_values = load_serving(tmp_path / "exports" / "gaming_rl-cartpole-dqn" / "1")(observations=observations)
    reference_values = load_serving(tmp_path / "exports" / "gaming_rl-cartpole-dqn" / "2")(observations=observations)
    np.testing.assert_allclose(resumed_values["action_values"], reference_values["action_values"], atol=1e-6)

    evaluated = run_cli("evaluate", "--run-id", run_id, "--tracking-uri", uri)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    reported = float(re.search(r"test_return_mean=([-\d.]+)", evaluated.stdout).group(1))
    assert reported == round(run.data.metrics["test_return_mean"], 4)  # the SavedModel plays the same episodes
