"""Checkpoints of an RL run in `checkpoint_dir`, written atomically after every evaluation, in formats that cannot
run code when read (no pickle anywhere: a checkpoint folder is data a resumed run trusts).

Each checkpoint is a folder `step_<env steps>/` with
- `arrays.npz`: network, target network and optimizer variables, the replay buffer, and every numpy array of the
  state below (read with `allow_pickle=False`);
- `state.json`: counters, the numpy Generator's state, the environments' state mid-episode (`snapshot_env`) and
  the episode statistics, so a resumed run continues exactly. Arrays and numpy scalars in it are references
  into `arrays.npz` (`{"__array__": key}`), tuples and dicts are tagged, so JSON gives back the same values.
`latest.json` names the newest complete checkpoint; older ones are pruned.

An environment's state is the plain data of each object of its wrapper chain (numbers, strings, numpy arrays,
Generators, and lists, tuples and dicts of them), set back on a freshly made environment of the same id. One
holding anything else (a Box2D world) has no snapshot: it is reset on resume.
"""

import enum
import json
import os
import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np

from shared.errors import UsageError

LATEST = "latest.json"
STATE = "state.json"
STATE_ARRAYS = "state/"  # the prefix of the state's arrays in arrays.npz
BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")
# Attributes fixed when an environment is made (or derived from its id): a fresh environment has them already.
STATIC = frozenset({"env", "envs", "env_fns", "spec", "_cached_spec", "metadata", "_metadata", "_saved_kwargs",
                    "render_mode", "autoreset_mode", "action_space", "observation_space", "_action_space",
                    "_observation_space", "single_action_space", "single_observation_space"})


def save(checkpoint_dir, env_steps, arrays, state, keep=2):
    checkpoint_dir = Path(checkpoint_dir)
    name = f"step_{env_steps:010d}"
    staging = checkpoint_dir / f".{name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    state_arrays = {}
    document = _encode(state, state_arrays)
    np.savez(staging / "arrays.npz", **arrays, **state_arrays)
    (staging / STATE).write_text(json.dumps(document))
    shutil.rmtree(checkpoint_dir / name, ignore_errors=True)
    os.replace(staging, checkpoint_dir / name)
    pointer = checkpoint_dir / f".{LATEST}.partial"
    pointer.write_text(json.dumps({"checkpoint": name, "env_steps": env_steps}))
    os.replace(pointer, checkpoint_dir / LATEST)
    for old in sorted(checkpoint_dir.glob("step_*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return checkpoint_dir / name


def load_latest(checkpoint_dir):
    """`(arrays, state)` of the newest checkpoint, or None when the run has none yet. A checkpoint in another
    format (a pickled `state.pkl`, object arrays) is refused, never loaded."""
    pointer = Path(checkpoint_dir) / LATEST
    if not pointer.is_file():
        return None
    folder = Path(checkpoint_dir) / json.loads(pointer.read_text())["checkpoint"]
    if not (folder / STATE).is_file():
        found = ", ".join(sorted(path.name for path in folder.iterdir())) if folder.is_dir() else "no folder"
        raise _unsafe(folder, f"{found} (no {STATE})")
    try:
        with np.load(folder / "arrays.npz", allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except ValueError as error:  # object arrays need pickle
        raise _unsafe(folder, f"arrays.npz holding pickled objects ({error})") from None
    state_arrays = {key: arrays.pop(key) for key in [key for key in arrays if key.startswith(STATE_ARRAYS)]}
    return arrays, _decode(json.loads((folder / STATE).read_text()), state_arrays)


def _unsafe(folder, received):
    return UsageError(
        f"The checkpoint cannot be read safely. Received: {received} in {folder}. Expected {STATE} and an "
        "arrays.npz of plain arrays, as this version writes them (a pickle could run code when loaded). Fix: start "
        "a new run without --resume, or resume with the version that wrote the checkpoint."
    )


def variables_to_arrays(prefix, variables):
    return {f"{prefix}/{index:04d}": np.asarray(variable.numpy()) for index, variable in enumerate(variables)}


def assign_arrays(prefix, variables, arrays):
    values = [arrays[key] for key in sorted(key for key in arrays if key.startswith(f"{prefix}/"))]
    if len(values) != len(variables):
        raise ValueError(f"Checkpoint does not match the model. Received: {len(values)} arrays for {prefix}. "
                         f"Expected {len(variables)} (was the config changed between runs?).")
    for variable, value in zip(variables, values):
        variable.assign(value)


# === Environments ===


def snapshot_env(env):
    """The plain state of an environment (or a vector of them), mid-episode, or None when part of it is not plain
    data (it is then reset on resume)."""
    attributes = {}
    for name, value in vars(env).items():
        if name in STATIC or isinstance(value, (gym.Space, enum.Enum)):
            continue
        if not _is_plain(value):
            return None
        attributes[name] = value
    snapshot = {"attributes": attributes}
    if isinstance(getattr(env, "env", None), gym.Env):
        snapshot["env"] = snapshot_env(env.env)
        if snapshot["env"] is None:
            return None
    if isinstance(getattr(env, "envs", None), list):
        snapshot["envs"] = [snapshot_env(inner) for inner in env.envs]
        if any(inner is None for inner in snapshot["envs"]):
            return None
    return snapshot


def restore_env(env, snapshot):
    """Set a `snapshot_env` state back on `env`, a freshly made environment of the same id; returns it."""
    for name, value in snapshot["attributes"].items():
        setattr(env, name, value)
    if "env" in snapshot:
        restore_env(env.env, snapshot["env"])
    for inner, inner_snapshot in zip(getattr(env, "envs", ()), snapshot.get("envs", ())):
        restore_env(inner, inner_snapshot)
    return env


def _is_plain(value):
    if value is None or isinstance(value, (bool, int, float, str, np.generic, np.random.Generator)):
        return True
    if isinstance(value, np.ndarray):
        return value.dtype != object
    if isinstance(value, (list, tuple)):
        return all(_is_plain(item) for item in value)
    if isinstance(value, dict):
        return all(_is_plain(key) and _is_plain(item) for key, item in value.items())
    return False


# === Plain values <-> JSON (+ arrays) ===


def _encode(value, arrays):
    """JSON for `value`; its numpy arrays and scalars go into `arrays` under `state/<n>` keys."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.ndarray, np.generic)):
        key = f"{STATE_ARRAYS}{len(arrays):06d}"
        arrays[key] = np.asarray(value)
        return {"__array__" if isinstance(value, np.ndarray) else "__scalar__": key}
    if isinstance(value, np.random.Generator):
        return {"__generator__": _encode(value.bit_generator.state, arrays)}
    if isinstance(value, list):
        return [_encode(item, arrays) for item in value]
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(item, arrays) for item in value]}
    if isinstance(value, dict):
        return {"__dict__": [[_encode(key, arrays), _encode(item, arrays)] for key, item in value.items()]}
    raise TypeError(f"Not checkpointable state. Received: a {type(value).__name__}. Expected numbers, strings, "
                    "numpy arrays, Generators, and lists, tuples and dicts of them.")


def _decode(value, arrays):
    if isinstance(value, list):
        return [_decode(item, arrays) for item in value]
    if not isinstance(value, dict):
        return value
    (tag, content), = value.items()
    if tag == "__array__":
        return arrays[content]
    if tag == "__scalar__":
        return arrays[content][()]
    if tag == "__generator__":
        state = _decode(content, arrays)
        if state.get("bit_generator") not in BIT_GENERATORS:
            raise ValueError(f"Unknown bit generator in {STATE}. Received: {state.get('bit_generator')!r}. Expected "
                             f"one of: {', '.join(BIT_GENERATORS)}.")
        generator = np.random.Generator(getattr(np.random, state["bit_generator"])())
        generator.bit_generator.state = state
        return generator
    if tag == "__tuple__":
        return tuple(_decode(item, arrays) for item in content)
    if tag == "__dict__":
        return {_decode(key, arrays): _decode(item, arrays) for key, item in content}
    raise ValueError(f"Unknown tag in {STATE}. Received: {tag!r}. Expected __array__, __scalar__, __generator__, "
                     "__tuple__ or __dict__.")
