"""Checkpoints of an RL run in `checkpoint_dir`, written atomically after every evaluation.

Each checkpoint is a folder `step_<env steps>/` with
- `arrays.npz`: network, target network and optimizer variables, and the replay buffer;
- `state.pkl`: counters, the numpy Generator, the environments (pickled mid-episode when
  they allow it) and the episode statistics, so a resumed run continues exactly.
`latest.json` names the newest complete checkpoint; older ones are pruned.
"""

import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np

LATEST = "latest.json"


def save(checkpoint_dir, env_steps, arrays, state, keep=2):
    checkpoint_dir = Path(checkpoint_dir)
    name = f"step_{env_steps:010d}"
    staging = checkpoint_dir / f".{name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    np.savez(staging / "arrays.npz", **arrays)
    (staging / "state.pkl").write_bytes(pickle.dumps(state))
    shutil.rmtree(checkpoint_dir / name, ignore_errors=True)
    os.replace(staging, checkpoint_dir / name)
    pointer = checkpoint_dir / f".{LATEST}.partial"
    pointer.write_text(json.dumps({"checkpoint": name, "env_steps": env_steps}))
    os.replace(pointer, checkpoint_dir / LATEST)
    for old in sorted(checkpoint_dir.glob("step_*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return checkpoint_dir / name


def load_latest(checkpoint_dir):
    """`(arrays, state)` of the newest checkpoint, or None when the run has none yet."""
    pointer = Path(checkpoint_dir) / LATEST
    if not pointer.is_file():
        return None
    folder = Path(checkpoint_dir) / json.loads(pointer.read_text())["checkpoint"]
    with np.load(folder / "arrays.npz", allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    return arrays, pickle.loads((folder / "state.pkl").read_bytes())


def variables_to_arrays(prefix, variables):
    return {f"{prefix}/{index:04d}": np.asarray(variable.numpy()) for index, variable in enumerate(variables)}


def assign_arrays(prefix, variables, arrays):
    values = [arrays[key] for key in sorted(key for key in arrays if key.startswith(f"{prefix}/"))]
    if len(values) != len(variables):
        raise ValueError(f"Checkpoint does not match the model. Received: {len(values)} arrays for {prefix}. "
                         f"Expected {len(variables)} (was the config changed between runs?).")
    for variable, value in zip(variables, values):
        variable.assign(value)


def snapshot_env(env):
    """Pickle an environment mid-episode, or None when it cannot be (it is then reset on resume)."""
    try:
        return pickle.dumps(env)
    except Exception:  # noqa: BLE001 - e.g. simulators holding native handles
        return None


def load_env(snapshot):
    return pickle.loads(snapshot)
