"""A run's checkpoints in its MLflow artifacts, so `--resume` works on another machine.

With a shared store (an MLflow server or a database), `CheckpointUpload` copies the run's checkpoint
folder (Keras BackupAndRestore's files, the RL loop's `step_*` folders) to the run's artifacts under
`checkpoints/` whenever it changed, checked at every epoch's start and end: the cadence of the backup.
`dlsuite train --resume` on a machine without the folder downloads it first (`download`). A FINISHED run
needs none: `delete` removes them from the artifacts as the local folder is removed.
"""

import shutil
import tempfile
from pathlib import Path

import keras

ARTIFACT = "checkpoints"


def _client():
    from mlflow.tracking import MlflowClient

    return MlflowClient()


def _state(folder):
    """What the folder holds now: (relative path, size, modification time) of each complete file."""
    return sorted((str(path.relative_to(folder)), stat.st_size, stat.st_mtime_ns)
                  for path in Path(folder).rglob("*")
                  if path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder).parts)
                  for stat in [path.stat()])


class CheckpointUpload(keras.callbacks.Callback):
    """Upload the checkpoint folder to the run's artifacts when it changed (after BackupAndRestore wrote)."""

    def __init__(self, run_id, folder):
        super().__init__()
        self.run_id, self.folder, self.uploaded = run_id, Path(folder), None

    def on_epoch_begin(self, epoch, logs=None):
        self.upload()  # a loop that checkpoints after its callbacks' on_epoch_end (gaming_rl)

    def on_epoch_end(self, epoch, logs=None):
        self.upload()

    def on_train_end(self, logs=None):
        self.upload()

    def upload(self):
        from shared import tracking

        state = _state(self.folder)
        if not state or state == self.uploaded:
            return
        tracking.warn_on_failure("checkpoints", self._replace_remote, state)

    def _replace_remote(self, state):
        client = _client()
        client.log_artifacts(self.run_id, str(self.folder), ARTIFACT)
        names = {Path(path).parts[0] for path, _size, _time in state}
        stale = [entry.path for entry in client.list_artifacts(self.run_id, ARTIFACT)
                 if Path(entry.path).name not in names]  # e.g. an RL step_* folder the loop rotated out
        if stale:
            repository = _repository(self.run_id)
            for path in stale:
                repository.delete_artifacts(path)
        self.uploaded = state


def _repository(run_id):
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    return get_artifact_repository(_client().get_run(run_id).info.artifact_uri)


def download(run_id, folder):
    """Fill an empty local checkpoint folder from the run's artifacts; return True if it did."""
    folder = Path(folder)
    if folder.is_dir() and any(folder.iterdir()):
        return False
    if not _client().list_artifacts(run_id, ARTIFACT):
        return False
    import mlflow

    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as tmp:
        downloaded = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=ARTIFACT, dst_path=tmp))
        for entry in downloaded.iterdir():
            shutil.move(str(entry), folder / entry.name)
    return True


def delete(run_id):
    """Remove the checkpoints of a run from its artifacts (a FINISHED run cannot be resumed)."""
    import warnings

    try:
        if _client().list_artifacts(run_id, ARTIFACT):
            _repository(run_id).delete_artifacts(ARTIFACT)
    except Exception as error:  # noqa: BLE001 - the run is FINISHED; only storage is at stake
        warnings.warn(f"The checkpoints of FINISHED run {run_id} stay in its artifacts: removing them failed "
                      f"({str(error)[:200]}). On a server with authentication, deleting artifacts needs MANAGE "
                      "permission on the experiment (its creator has it).")
