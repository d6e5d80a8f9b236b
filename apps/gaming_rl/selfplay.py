"""The self-play loop: iterations of (self-play games, training, evaluation), each one Keras "epoch".

An iteration's logs (self-play games, mean game length, positions and simulations per second, the losses,
the score against each opponent) go through the pipeline's `keras.callbacks.CallbackList` (MLflow logging,
"solved" stopping, tuning's pruning); the training minibatches run inside `model.fit`, whose batches are
forwarded to the same list (the NaN guard, stopping on a signal). After every iteration the agent is
checkpointed (`checkpoints.py`: network, optimizer, replay buffer, Generator, counters); a resumed run
restores the newest checkpoint and continues the same iteration count and buffer.
"""

import time

import keras

from apps.gaming_rl import checkpoints, loop
from apps.gaming_rl.loop import _print

EVAL_SEED_OFFSET = 1_000  # evaluation opponents' seeds: seed + offset + iteration


class ForwardBatches(keras.callbacks.Callback):
    """Inside `model.fit`: hand each minibatch's logs to the pipeline's callbacks, numbered across iterations."""

    def __init__(self, callback_list, progress):
        super().__init__()
        self.callback_list, self.progress = callback_list, progress

    def on_train_batch_end(self, batch, logs=None):
        self.callback_list.on_train_batch_end(self.progress["updates"], logs)
        self.progress["updates"] += 1


def train(agent, model, config, callbacks, checkpoint_dir):
    callback_list = keras.callbacks.CallbackList(list(callbacks), model=model)
    progress, solved, resumed = loop.resume(agent, callbacks, checkpoint_dir, {
        "iteration": 0, "updates": 0, "wall_seconds": 0.0, "finished": False})
    if resumed:
        _print(f"resumed from checkpoint at iteration {progress['iteration']} "
               f"({agent.games_played} games, {agent.buffer.size} positions in the buffer)")
    forward = ForwardBatches(callback_list, progress)
    stop = progress["finished"]
    callback_list.on_train_begin()
    while progress["iteration"] < config.iterations and not stop:
        if (config.max_train_seconds is not None
                and progress["wall_seconds"] + progress.get("last_seconds", 0.0) > config.max_train_seconds):
            _print(f"time budget of {config.max_train_seconds:.0f} s reached (another iteration would cross it)")
            break
        iteration = progress["iteration"]
        callback_list.on_epoch_begin(iteration)
        started = time.perf_counter()
        logs = {"iteration": iteration + 1, **agent.self_play()}
        train_started = time.perf_counter()
        logs.update(agent.train([forward]))
        logs["train_seconds"] = time.perf_counter() - train_started
        if (iteration + 1) % config.eval_interval == 0 or iteration + 1 == config.iterations:
            for number, name in enumerate(config.opponents):
                result = agent.match(name, config.eval_games, config.seed + EVAL_SEED_OFFSET + iteration)
                logs[f"score_vs_{name}"] = result["score"]
                logs[f"losses_vs_{name}"] = float(result["losses"])
                if number == 0:
                    logs["eval_score"] = result["score"]
        progress["last_seconds"] = time.perf_counter() - started
        progress["wall_seconds"] += progress["last_seconds"]
        logs["wall_seconds"] = progress["wall_seconds"]
        _print(f"iteration {iteration + 1}/{config.iterations} | " + " | ".join(
            f"{key} {value:.4g}" for key, value in logs.items() if key != "iteration"))
        model.stop_training = False
        callback_list.on_epoch_end(iteration, logs)
        stop = bool(model.stop_training)
        progress["iteration"] = iteration + 1
        progress["finished"] = stop
        arrays, agent_state = agent.checkpoint()
        checkpoints.save(checkpoint_dir, progress["iteration"], arrays,
                         {"agent": agent_state, "progress": dict(progress),
                          "solved_streak": solved.streak if solved is not None else 0})
        _print(f"checkpoint saved at iteration {progress['iteration']}")
    callback_list.on_train_end()
