"""Gaming RL, PPO: the numpy copy of the actor-critic that acts, and the LunarLander preset's budget."""

import numpy as np
import pytest

from apps.gaming_rl import config as rl_config
from apps.gaming_rl import data as environments
from pipelines import catalog


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_numpy_actor_critic_matches_the_keras_network(activation):
    from apps.gaming_rl.models import build_actor_critic
    from apps.gaming_rl.numpy_policy import NumpyActorCritic

    model = build_actor_critic(8, 4, (32, 16), activation)
    observations = environments.sample_observations("LunarLander-v3", 32, seed=0)
    logits, values = NumpyActorCritic(model, 2, activation)(observations)
    outputs = model(observations)
    np.testing.assert_allclose(logits, outputs["logits"].numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(values, outputs["value"].numpy()[:, 0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("activation", ["tanh", "gelu"])  # gelu has no numpy version: the compiled call acts
def test_the_ppo_agent_acts_with_the_weights_of_its_latest_update_and_restore(activation, tmp_path):
    import dataclasses

    _name, spec = catalog.task_spec("gaming_rl", "cartpole-ppo")
    config = dataclasses.replace(spec.preset("smoke"), activation=activation)
    runner = catalog.load_task(spec)
    data = runner.build_data(config, runner.check_inputs(config, None))
    model = runner.build_model(config, data)
    agent = runner.agent_class(model, config, data.info)
    assert (agent.acting_network is None) == (activation == "gelu")
    observations = environments.sample_observations("CartPole-v1", 16, seed=1)
    before = agent.policy(observations)[0]
    agent.train_until(256, lambda loss: False)  # two updates
    logits, values = agent.policy(observations)
    assert not np.allclose(logits, before, atol=1e-6)  # the updates changed the policy that acts
    outputs = model(observations)
    np.testing.assert_allclose(logits, outputs["logits"].numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(values, outputs["value"].numpy()[:, 0], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(agent.greedy_actions(observations), np.argmax(logits, axis=-1))

    arrays, state = agent.checkpoint()
    fresh = runner.agent_class(runner.build_model(config, data), config, data.info)
    fresh.restore(arrays, state)
    np.testing.assert_allclose(fresh.policy(observations)[0], logits, rtol=1e-6, atol=1e-6)


def test_lunarlander_ppo_stays_within_a_million_env_steps_in_whole_rollouts():
    config = rl_config.lunarlander_ppo()
    rollout = config.num_envs * config.rollout_steps
    assert config.total_env_steps <= 1_000_000 and config.total_env_steps % rollout == 0
    assert rollout // config.num_minibatches == 64  # rl-zoo's batch_size
