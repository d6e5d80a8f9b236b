"""The Keras MultiWorkerMirroredStrategy fix (`shared/multi_worker_fix.py`) is still needed, and it works.

Both run `tests/multi_worker_probe.py` (a tiny `model.fit`) as the two workers of a local cluster."""

import json
import os
import subprocess
import sys

import pytest

from pipelines.workers import tf_configs
from shared import multi_worker_fix
from tests.conftest import REPO


def fit_on_two_workers(mode, tmp_path):
    outputs = [tmp_path / f"worker{index}.json" for index in range(2)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    workers = [subprocess.Popen([sys.executable, str(REPO / "tests" / "multi_worker_probe.py"), mode, str(output)],
                                env={**env, "TF_CONFIG": tf_config}, cwd=REPO, stderr=subprocess.PIPE, text=True)
               for tf_config, output in zip(tf_configs(2), outputs)]
    try:
        errors = [worker.communicate(timeout=300)[1] for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    assert [worker.returncode for worker in workers] == [0, 0], errors
    return [json.loads(output.read_text()) for output in outputs]


def test_unpatched_keras_still_fails_under_two_workers(tmp_path):
    results = fit_on_two_workers("unpatched", tmp_path)
    if all("loss" in result for result in results):
        pytest.fail(f"model.fit under MultiWorkerMirroredStrategy works without shared/multi_worker_fix.py on "
                    f"Keras {__import__('keras').__version__}: upstream fixed keras-team/keras#20585. Delete the "
                    "fix: shared/multi_worker_fix.py and its call in shared/distribute.py, and this test.")
    for result in results:  # the first of the two known failures: the symbolic build all-reduces the input batch
        assert "PerReplica" in result["error"] and "unsupported type" in result["error"], result


@pytest.mark.large  # tests/test_distribute.py trains through the fix with two workers already
def test_the_fix_trains_both_workers_alike(tmp_path):
    results = fit_on_two_workers("fix", tmp_path)
    assert all("loss" in result for result in results), results
    assert results[0]["loss"] == results[1]["loss"]  # one all-reduced loss


def test_the_fix_applies_only_to_checked_versions():
    assert multi_worker_fix.needed("3.15.0")
    assert not multi_worker_fix.needed("3.16.0")
    assert not multi_worker_fix.needed("2.15.0")
