"""Gaming RL: error messages, the numpy acting network, n-step transitions and the SavedModel policy."""

import dataclasses

import numpy as np
import pytest

from apps.gaming_rl import config as rl_config
from apps.gaming_rl import data as environments
from pipelines import catalog
from pipelines.train import resolve_config
from shared.errors import ConfigError, UsageError


# === Errors a user can fix ===


def test_unknown_environment_names_the_closest_id():
    with pytest.raises(ConfigError, match=r"Unknown Gymnasium environment\. Received: env_id='CartPol-v1'.*"
                                          r"Did you mean 'CartPole-v1'\?"):
        environments.check_env_id("CartPol-v1")


def test_continuous_actions_are_rejected_with_the_reason():
    with pytest.raises(ConfigError, match=r"Unsupported action space\. Received: env_id='Pendulum-v1'.*"
                                          r"Expected a Discrete action space"):
        environments.check_env_id("Pendulum-v1")


def test_unknown_task_lists_the_tasks():
    with pytest.raises(UsageError, match=r"Unknown task for app gaming_rl\. Received: --task cartpole-a2c\. "
                                         r"Expected one of: cartpole-dqn, cartpole-ppo"):
        catalog.task_spec("gaming_rl", "cartpole-a2c")


@pytest.mark.parametrize(("pair", "message"), [
    ("gamma=1.5", r"Invalid value for config key gamma\. Received: gamma=1\.5\. Expected a number in \[0, 1\]"),
    ("hidden_units=0", r"Invalid value for config key hidden_units\. Received: hidden_units=\(0,\)"),
    ("n_step=0", r"Invalid value for config key n_step\. Received: n_step=0"),
    ("learning_rat=0.1", r"Unknown config key 'learning_rat'.*Did you mean 'learning_rate'\?"),
])
def test_bad_config_values_say_what_was_expected(pair, message):
    _name, spec = catalog.task_spec("gaming_rl", "cartpole-dqn")
    with pytest.raises(ConfigError, match=message):
        resolve_config(spec, "smoke", overrides=[pair])


def test_every_task_has_default_and_smoke_presets_and_smoke_is_small():
    for name, spec in rl_config.TASKS.items():
        if spec.config_class is rl_config.AlphaZeroConfig:
            continue  # self-play: tests/test_selfplay_rules.py
        assert set(spec.presets) >= {"default", "smoke"}, name
        smoke, default = spec.preset("smoke"), spec.preset("default")
        assert smoke.total_env_steps <= 1024 < default.total_env_steps, name
        assert smoke.env_id == default.env_id and name.split("-")[1] == type(smoke).__name__[:3].lower()


# === Environments ===


def test_frozenlake_observations_are_one_hot():
    info = environments.describe("FrozenLake-v1")
    assert (info["obs_dim"], info["num_actions"], info["one_hot_size"]) == (16, 4, 16)
    observations = environments.sample_observations("FrozenLake-v1", 8, seed=0)
    assert observations.shape == (8, 16) and observations.dtype == np.float32
    np.testing.assert_array_equal(observations.sum(axis=1), np.ones(8))


def test_play_episodes_is_reproducible_and_counts_steps():
    def always_left(observations):
        return np.zeros(len(observations), np.int64)

    returns, lengths = environments.play_episodes(always_left, "CartPole-v1", 5, seed=3)
    again, _ = environments.play_episodes(always_left, "CartPole-v1", 5, seed=3)
    np.testing.assert_array_equal(returns, again)
    np.testing.assert_array_equal(returns, lengths)  # CartPole pays 1 per step
    assert np.all((lengths > 5) & (lengths < 20))  # pushing left falls over quickly


# === Agents ===


@pytest.mark.parametrize("dueling", [False, True])
def test_numpy_acting_network_matches_the_keras_network(dueling):
    from apps.gaming_rl.models import build_q_network
    from apps.gaming_rl.numpy_policy import NumpyQNetwork

    model = build_q_network(4, 2, (32, 16), "relu", dueling=dueling)
    observations = environments.sample_observations("CartPole-v1", 32, seed=0)
    np.testing.assert_allclose(NumpyQNetwork(model, 2, "relu", dueling)(observations),
                               model(observations).numpy(), rtol=1e-5, atol=1e-5)


def test_n_step_transitions_discount_and_stop_at_the_episode_end():
    from apps.gaming_rl.agents.dqn import DQNAgent
    from apps.gaming_rl.models import build_q_network

    config = dataclasses.replace(rl_config.smoke(rl_config.cartpole_dqn), n_step=3, gamma=0.5)
    model = build_q_network(4, 2, config.hidden_units)
    agent = DQNAgent(model, config, environments.describe("CartPole-v1"))
    observations = np.arange(5, dtype=np.float32)[:, None].repeat(4, axis=1)
    for step in range(4):  # four steps; the fourth terminates the episode
        agent._remember(observations[step], 0, 1.0, observations[step + 1], terminated=step == 3, truncated=False)
    buffer = agent.buffer
    assert buffer.size == 4
    np.testing.assert_allclose(buffer.returns[:4], [1.75, 1.75, 1.5, 1.0])  # 1 + .5 + .25, ..., then cut short
    np.testing.assert_allclose(buffer.discounts[:4], [0.125, 0.0, 0.0, 0.0])  # gamma**3, then terminal
    np.testing.assert_array_equal(buffer.next_observations[:4, 0], [3, 4, 4, 4])


# === Export ===


@pytest.mark.parametrize("task_name", ["cartpole-dqn", "cartpole-ppo"])
def test_saved_model_policy_matches_the_keras_network(task_name, tmp_path):
    import tensorflow as tf

    from shared import export

    name, spec = catalog.task_spec("gaming_rl", task_name)
    config = spec.preset("smoke")
    runner = catalog.load_task(spec)
    data = runner.build_data(config, runner.check_inputs(config, None))
    model = runner.build_model(config, data)
    endpoints = runner.endpoints(model, config, data.info)
    export.write_saved_model(model, endpoints, tmp_path / "policy")
    observations = runner.example_inputs(data)["observations"]
    served = export.load_serving(tmp_path / "policy")(observations=observations)

    outputs = model(observations)
    if task_name.endswith("dqn"):
        expected_values = outputs.numpy()
        np.testing.assert_allclose(served["action_values"], expected_values, atol=1e-5)
    else:
        expected_values = tf.nn.softmax(outputs["logits"]).numpy()
        np.testing.assert_allclose(served["action_probabilities"], expected_values, atol=1e-5)
        np.testing.assert_allclose(served["state_values"], outputs["value"].numpy()[:, 0], atol=1e-5)
    assert served["actions"].dtype == np.int32 and served["actions"].shape == (len(observations),)
    np.testing.assert_array_equal(served["actions"], expected_values.argmax(axis=-1))


# === Checkpoints: plain data, never a pickle ===


def _step_both(first, second, actions):
    """Step two environments with the same actions; their observations (and rewards) must agree."""
    for action in actions:
        one, two = first.step(action), second.step(action)
        for mine, theirs in zip(one[:4], two[:4]):  # observation, reward, terminated, truncated
            np.testing.assert_array_equal(mine, theirs)


@pytest.mark.parametrize("task_name, env_id", [("cartpole-dqn", "CartPole-v1"), ("cartpole-ppo", "CartPole-v1"),
                                               ("frozenlake-dqn", "FrozenLake-v1")])
def test_a_checkpoint_restores_agent_and_environments_mid_episode_from_json_and_npz(task_name, env_id, tmp_path):
    from apps.gaming_rl import checkpoints

    name, spec = catalog.task_spec("gaming_rl", task_name)
    config = spec.preset("smoke")
    runner = catalog.load_task(spec)
    data = runner.build_data(config, runner.check_inputs(config, None))
    agent = runner.agent_class(runner.build_model(config, data), config, data.info)
    agent.train_until(96, lambda loss: False)
    arrays, state = agent.checkpoint()
    folder = checkpoints.save(tmp_path, agent.env_steps, arrays, {"agent": state, "progress": {"epoch": 3}})
    assert sorted(path.name for path in folder.iterdir()) == ["arrays.npz", "state.json"]
    restored_arrays, restored_state = checkpoints.load_latest(tmp_path)
    assert restored_state["progress"] == {"epoch": 3}
    again = runner.agent_class(runner.build_model(config, data), config, data.info)
    again.restore(restored_arrays, restored_state["agent"])
    assert again.env_steps == agent.env_steps >= 96
    assert again.rng.bit_generator.state == agent.rng.bit_generator.state
    if task_name.endswith("dqn"):
        np.testing.assert_array_equal(again.observation, agent.observation)
        _step_both(again.env, agent.env, [0, 1, 1, 0, 1] if env_id == "CartPole-v1" else [2, 1, 2, 1, 2])
    else:
        np.testing.assert_array_equal(again.observations, agent.observations)
        _step_both(again.envs, agent.envs, [np.array([0, 1]), np.array([1, 1]), np.array([0, 0])])


def test_a_planted_pickle_is_refused_and_never_run(tmp_path):
    import json
    import os
    import pickle

    from apps.gaming_rl import checkpoints

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    folder = tmp_path / "checkpoints" / "step_0000000256"
    folder.mkdir(parents=True)
    np.savez(folder / "arrays.npz", weights=np.zeros(3))
    (folder / "state.pkl").write_bytes(pickle.dumps(Payload()))
    (tmp_path / "checkpoints" / "latest.json").write_text(json.dumps({"checkpoint": folder.name, "env_steps": 256}))
    with pytest.raises(UsageError, match=r"The checkpoint cannot be read safely\. Received: arrays\.npz, state\.pkl "
                                         r"\(no state\.json\) in .*step_0000000256\. Expected state\.json"):
        checkpoints.load_latest(tmp_path / "checkpoints")
    (folder / "state.json").write_text(json.dumps({"__dict__": []}))
    np.savez(folder / "arrays.npz", weights=np.array([Payload()], dtype=object))  # an object array is a pickle too
    with pytest.raises(UsageError, match=r"The checkpoint cannot be read safely\. Received: arrays\.npz holding "
                                         r"pickled objects"):
        checkpoints.load_latest(tmp_path / "checkpoints")
    assert not marker.exists()
