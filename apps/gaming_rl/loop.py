"""The RL training loop every agent shares: train for `eval_interval` env steps, evaluate greedily, log, checkpoint.

Each evaluation is one Keras "epoch": its logs go through the same `keras.callbacks.CallbackList`
as `model.fit` would drive (MLflow logging, `ThresholdStopping` for "solved", `TerminateOnNaN`
after every update). An agent implements:

    env_steps                          environment steps taken so far
    train_until(env_steps, on_update)  act and learn until `env_steps`; `on_update(loss)` returns True to stop
    greedy_actions(observations)       numpy [batch, obs_dim] -> numpy [batch] actions
    checkpoint() / restore(arrays, state)
"""

import math
import sys
import time

import keras
import numpy as np

from apps.gaming_rl import checkpoints
from apps.gaming_rl import data as environments
from shared.callbacks import ThresholdStopping


def resume(agent, callbacks, checkpoint_dir, progress):
    """Restore the newest checkpoint of `checkpoint_dir` (if any) into `agent` and the "solved" streak; return
    `(progress, solved callback or None, whether a checkpoint was restored)`."""
    solved = next((callback for callback in callbacks if isinstance(callback, ThresholdStopping)), None)
    restored = checkpoints.load_latest(checkpoint_dir)
    if restored is None:
        return progress, solved, False
    arrays, state = restored
    agent.restore(arrays, state["agent"])
    if solved is not None:
        solved.streak = state["solved_streak"]
    return state["progress"], solved, True


def train(agent, model, config, callbacks, checkpoint_dir):
    callback_list = keras.callbacks.CallbackList(list(callbacks), model=model)
    progress, solved, resumed = resume(agent, callbacks, checkpoint_dir, {
        "epoch": 0, "train_seconds": 0.0, "wall_seconds": 0.0, "finished": False, "updates": 0})
    if resumed:
        _print(f"resumed from checkpoint at env step {agent.env_steps} (epoch {progress['epoch']})")
    model.stop_training = progress["finished"]

    def on_update(loss):
        callback_list.on_train_batch_end(progress["updates"], {"loss": loss})
        progress["updates"] += 1
        return model.stop_training

    callback_list.on_train_begin()
    while agent.env_steps < config.total_env_steps and not model.stop_training:
        epoch = progress["epoch"]
        callback_list.on_epoch_begin(epoch)
        started, start_steps = time.perf_counter(), agent.env_steps
        target = min(config.total_env_steps, (agent.env_steps // config.eval_interval + 1) * config.eval_interval)
        train_logs = agent.train_until(target, on_update)
        train_seconds = time.perf_counter() - started
        if model.stop_training and not math.isfinite(train_logs.get("loss", 0.0)):
            _print(f"env steps {agent.env_steps}: non-finite loss, training stopped (no checkpoint written)")
            break
        returns, lengths = environments.play_episodes(agent.greedy_actions, config.env_id, config.eval_episodes,
                                                      config.seed + environments.EVAL_SEED_OFFSET,
                                                      config.max_episode_steps)
        progress["train_seconds"] += train_seconds
        progress["wall_seconds"] += time.perf_counter() - started
        steps = agent.env_steps - start_steps
        logs = {
            "eval_return_mean": float(returns.mean()), "eval_return_std": float(returns.std()),
            "eval_episode_length_mean": float(lengths.mean()), "env_steps": agent.env_steps,
            "steps_per_second": steps / max(train_seconds, 1e-9), "train_seconds": progress["train_seconds"],
            "wall_seconds": progress["wall_seconds"], **train_logs,
        }
        _print(f"env steps {agent.env_steps}/{config.total_env_steps} | eval return {logs['eval_return_mean']:.1f}"
               f" ± {logs['eval_return_std']:.1f} (length {logs['eval_episode_length_mean']:.0f}) | "
               + " | ".join(f"{key} {value:.4g}" for key, value in train_logs.items())
               + f" | {logs['steps_per_second']:.0f} steps/s")
        callback_list.on_epoch_end(epoch, logs)
        progress["epoch"] = epoch + 1
        progress["finished"] = bool(model.stop_training)
        if progress["finished"]:
            _print(f"solved: eval return {logs['eval_return_mean']:.1f} >= {config.solved_threshold} "
                   f"at env step {agent.env_steps}")
        arrays, agent_state = agent.checkpoint()
        checkpoints.save(checkpoint_dir, agent.env_steps, arrays,
                         {"agent": agent_state, "progress": dict(progress),
                          "solved_streak": solved.streak if solved is not None else 0})
        _print(f"checkpoint saved at env step {agent.env_steps}")
    callback_list.on_train_end()


def _print(message):
    print(message, file=sys.stdout, flush=True)


def episode_statistics(returns, lengths):
    """Mean return and length of the training episodes finished since the last call (empty: nothing)."""
    if not returns:
        return {}
    return {"train_episode_return_mean": float(np.mean(returns)), "train_episode_length_mean": float(np.mean(lengths))}
