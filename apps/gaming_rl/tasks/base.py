"""What the gaming RL tasks share (`dqn.py`, `ppo.py`): a DQN or PPO agent on a Gymnasium game, trained in its
own loop on the suite's contract.

`build_data` has no dataset to load: it describes the environment (what serving
needs) and samples a few real observations for the export check. `fit` runs
`apps.gaming_rl.loop.train`, which drives the pipeline's callbacks, checkpoints into
`checkpoint_dir` after every evaluation and restores from it (`--resume`).
`evaluate` plays greedy test episodes with `predict`, the in-memory endpoint during
training and the reloaded SavedModel in `dlsuite evaluate`.
"""

import hashlib
import json

import numpy as np

from apps.gaming_rl import data as environments
from apps.gaming_rl import loop, plots
from shared.app import Data, DatasetRecord, DataSource, Report, Task
from shared.callbacks import ThresholdStopping


class RLTask(Task):
    app = "gaming_rl"
    monitor = "eval_return_mean"
    monitor_mode = "max"
    headline = ("test_return_mean", "max")  # over the test episodes `evaluate` plays
    step_key = "env_steps"
    agent_class = None
    cannot_distribute = ("its own loop steps one environment and applies its updates outside model.fit, in no "
                         "replica context; data parallelism does not apply to it.")

    # === Inputs ===

    def check_inputs(self, config, data_dir):
        environments.check_env_id(config.env_id)
        return DataSource("environment", config.env_id)

    def build_data(self, config, source):
        info = {**environments.describe(config.env_id, config.max_episode_steps), "algorithm": self.algorithm}
        fingerprint = hashlib.sha256(json.dumps(info, sort_keys=True).encode()).hexdigest()
        record = DatasetRecord(config.env_id, source.uri, "environment", 0, fingerprint)
        observations = environments.sample_observations(config.env_id, 64,
                                                        config.seed + environments.TEST_SEED_OFFSET,
                                                        config.max_episode_steps)
        return Data(test=observations, records=[record], info=info)

    # === Training ===

    def callbacks(self, config):
        return solved_and_nan_guard(self.monitor, config)

    def fit(self, model, data, config, callbacks, checkpoint_dir):
        agent = self.agent_class(model, config, data.info)
        loop.train(agent, model, config, [*self.callbacks(config), *callbacks], checkpoint_dir)

    # === Serving and evaluation ===

    def example_inputs(self, data):
        return {"observations": data.test[:16]}

    def model_example(self, data):
        return data.test[:4]

    def evaluate(self, serving, data, config):
        def act(observations):
            return serving(observations=np.asarray(observations, np.float32))["actions"]

        returns, lengths = environments.play_episodes(act, config.env_id, config.test_episodes,
                                                      config.seed + environments.TEST_SEED_OFFSET,
                                                      config.max_episode_steps)
        report = Report(metrics={"test_return_mean": float(returns.mean()), "test_return_std": float(returns.std()),
                                 "test_return_min": float(returns.min()),
                                 "test_episode_length_mean": float(lengths.mean())})
        figure = plots.return_curve_of_active_run(config.solved_threshold)
        if figure is not None:
            report.figures["return_curve.png"] = figure
        if config.gif_max_frames:
            try:
                report.files["episode.gif"] = environments.episode_gif(
                    act, config.env_id, config.seed + environments.TEST_SEED_OFFSET, config.max_episode_steps,
                    config.gif_max_frames)
            except Exception as error:  # noqa: BLE001 - a missing renderer must not fail the run
                import warnings

                warnings.warn(f"Rendering the episode GIF failed; the run goes on: {error}")
        return report


def solved_and_nan_guard(monitor, config):
    """"Solved" (`monitor` held at the config's `solved_threshold` for `solved_patience` evaluations) and the NaN
    guard (a NaN loss fails the run): the callbacks of every gaming task."""
    from shared.callbacks import NanGuard

    callbacks = [NanGuard(learning_rate=config.learning_rate)]
    if config.solved_threshold is not None:
        callbacks.append(ThresholdStopping(monitor, config.solved_threshold, config.solved_patience))
    return callbacks
