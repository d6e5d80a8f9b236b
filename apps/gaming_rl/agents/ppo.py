"""PPO: clipped surrogate objective, GAE, entropy bonus, `gymnasium.vector` environments.

Per step, one policy call for all environments, on a numpy copy of the network (refreshed
after every update; the compiled Keras call when the activation has no numpy version);
actions are sampled in numpy (the Generator is checkpointed). GAE runs in numpy; each update runs every epoch and
minibatch inside one compiled `tf.function`.
"""

import numpy as np
import tensorflow as tf

from apps.gaming_rl import checkpoints, loop
from apps.gaming_rl import data as environments
from apps.gaming_rl.numpy_policy import ACTIVATIONS, NumpyActorCritic
from shared.optimizers import get_optimizer


class PPOAgent:
    def __init__(self, model, config, info):
        self.model, self.config = model, config
        self.optimizer = get_optimizer("adam", config.learning_rate)
        self.optimizer.build(model.trainable_variables)
        self.rng = np.random.default_rng(config.seed)
        self.envs = environments.make_vector_env(config.env_id, config.num_envs, config.max_episode_steps)
        self.observations, _ = self.envs.reset(seed=config.seed)
        self.env_steps = 0
        self.episode_returns = np.zeros(config.num_envs)
        self.episode_lengths = np.zeros(config.num_envs, np.int64)
        signature = [tf.TensorSpec([None, info["obs_dim"]], tf.float32)]
        self._policy = tf.function(self._policy_eager, input_signature=signature)
        self.acting_network = None  # numpy copy of the actor-critic, when it can be made
        if config.activation in ACTIVATIONS:
            self.acting_network = NumpyActorCritic(model, len(config.hidden_units), config.activation)
        self._update = tf.function(self._update_eager, reduce_retracing=True)

    def _policy_eager(self, observations):
        outputs = self.model(observations, training=False)
        return outputs["logits"], outputs["value"][:, 0]

    def policy(self, observations):
        """numpy [batch, obs_dim] -> numpy (logits [batch, num_actions], values [batch])."""
        observations = np.asarray(observations, np.float32)
        if self.acting_network is not None:
            return self.acting_network(observations)
        logits, values = self._policy(observations)
        return logits.numpy(), values.numpy()

    def greedy_actions(self, observations):
        return np.argmax(self.policy(observations)[0], axis=-1)

    # === Rollouts ===

    def train_until(self, env_steps, on_update):
        config = self.config
        losses, logs, finished_returns, finished_lengths = [], {}, [], []
        while self.env_steps < env_steps:
            rollout = self._collect(finished_returns, finished_lengths)
            if config.anneal_learning_rate:
                remaining = max(0.0, 1.0 - (self.env_steps - len(rollout[0])) / config.total_env_steps)
                self.optimizer.learning_rate = config.learning_rate * remaining
            batch_indices = self._minibatch_indices(len(rollout[0]))
            metrics = {key: float(value) for key, value in self._update(*rollout, batch_indices).items()}
            if self.acting_network is not None:
                self.acting_network.refresh()
            losses.append(metrics["loss"])
            logs.update(metrics)
            if on_update(metrics["loss"]):
                break
        logs["loss"] = float(np.mean(losses)) if losses else float("nan")
        logs["learning_rate"] = float(np.asarray(self.optimizer.learning_rate))
        return {**logs, **loop.episode_statistics(finished_returns, finished_lengths)}

    def _collect(self, finished_returns, finished_lengths):
        """One rollout of `rollout_steps` vector steps -> flat arrays for the update (GAE in numpy)."""
        config = self.config
        steps, num_envs = config.rollout_steps, config.num_envs
        observations = np.zeros((steps, num_envs, self.observations.shape[-1]), np.float32)
        actions = np.zeros((steps, num_envs), np.int32)
        log_probs, values, rewards, dones = (np.zeros((steps, num_envs), np.float32) for _ in range(4))
        for step in range(steps):
            logits, value = self.policy(self.observations)
            log_probabilities = _log_softmax(logits)
            cumulative = np.cumsum(np.exp(log_probabilities), axis=-1)
            action = np.minimum((cumulative < self.rng.random((num_envs, 1))).sum(-1), cumulative.shape[-1] - 1)
            next_observations, reward, terminated, truncated, info = self.envs.step(action)
            reward = np.asarray(reward, np.float32)
            self.episode_returns += reward
            # A time-limit cut is not a real end: bootstrap it from the value of the final observation.
            cut = truncated & ~terminated
            if cut.any():
                final = np.stack([info["final_obs"][index] for index in np.flatnonzero(cut)])
                reward[cut] += config.gamma * self.policy(final)[1]
            observations[step], actions[step], values[step], rewards[step] = self.observations, action, value, reward
            log_probs[step] = np.take_along_axis(log_probabilities, action[:, None], axis=-1)[:, 0]
            dones[step] = terminated | truncated
            self.episode_lengths += 1
            for index in np.flatnonzero(dones[step]):
                finished_returns.append(self.episode_returns[index])
                finished_lengths.append(self.episode_lengths[index])
                self.episode_returns[index], self.episode_lengths[index] = 0.0, 0
            self.observations = next_observations
            self.env_steps += num_envs
        last_values = self.policy(self.observations)[1]
        advantages = np.zeros_like(rewards)
        running = np.zeros(num_envs, np.float32)
        for step in reversed(range(steps)):
            next_values = last_values if step == steps - 1 else values[step + 1]
            alive = 1.0 - dones[step]
            delta = rewards[step] + config.gamma * next_values * alive - values[step]
            running = delta + config.gamma * config.gae_lambda * alive * running
            advantages[step] = running
        returns = advantages + values
        flat = lambda array: array.reshape(steps * num_envs, *array.shape[2:])  # noqa: E731
        return flat(observations), flat(actions), flat(log_probs), flat(advantages), flat(returns)

    # === Learning ===

    def _minibatch_indices(self, size):
        """`[num_epochs * num_minibatches, minibatch_size]` shuffled indices (the remainder is dropped)."""
        minibatch_size = size // self.config.num_minibatches
        return np.concatenate([
            self.rng.permutation(size)[: minibatch_size * self.config.num_minibatches].reshape(-1, minibatch_size)
            for _ in range(self.config.num_epochs)
        ]).astype(np.int32)

    def _update_eager(self, observations, actions, old_log_probs, advantages, returns, batch_indices):
        totals = {key: tf.constant(0.0) for key in ("loss", "policy_loss", "value_loss", "entropy", "approx_kl",
                                                    "clip_fraction")}
        num_batches = tf.shape(batch_indices)[0]
        for index in tf.range(num_batches):
            batch = batch_indices[index]
            metrics = self._gradient_step(tf.gather(observations, batch), tf.gather(actions, batch),
                                          tf.gather(old_log_probs, batch), tf.gather(advantages, batch),
                                          tf.gather(returns, batch))
            totals = {key: totals[key] + metrics[key] for key in totals}
        return {key: value / tf.cast(num_batches, tf.float32) for key, value in totals.items()}

    def _gradient_step(self, observations, actions, old_log_probs, advantages, returns):
        config = self.config
        if config.normalize_advantages:
            advantages = (advantages - tf.reduce_mean(advantages)) / (tf.math.reduce_std(advantages) + 1e-8)
        with tf.GradientTape() as tape:
            outputs = self.model(observations, training=True)
            log_probabilities = tf.nn.log_softmax(outputs["logits"])
            new_log_probs = tf.gather(log_probabilities, actions, batch_dims=1)
            ratio = tf.exp(new_log_probs - old_log_probs)
            clipped = tf.clip_by_value(ratio, 1.0 - config.clip_range, 1.0 + config.clip_range)
            policy_loss = -tf.reduce_mean(tf.minimum(ratio * advantages, clipped * advantages))
            value_loss = tf.reduce_mean(tf.square(returns - outputs["value"][:, 0]))
            entropy = -tf.reduce_mean(tf.reduce_sum(tf.exp(log_probabilities) * log_probabilities, axis=-1))
            loss = policy_loss + config.value_coefficient * value_loss - config.entropy_coefficient * entropy
        gradients = tape.gradient(loss, self.model.trainable_variables)
        gradients, _ = tf.clip_by_global_norm(gradients, config.max_grad_norm)
        self.optimizer.apply_gradients(zip(gradients, self.model.trainable_variables))
        log_ratio = new_log_probs - old_log_probs
        return {"loss": loss, "policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy,
                "approx_kl": tf.reduce_mean(tf.exp(log_ratio) - 1.0 - log_ratio),
                "clip_fraction": tf.reduce_mean(tf.cast(tf.abs(ratio - 1.0) > config.clip_range, tf.float32))}

    # === Checkpoint ===

    def checkpoint(self):
        arrays = {**checkpoints.variables_to_arrays("network", self.model.variables),
                  **checkpoints.variables_to_arrays("optimizer", self.optimizer.variables)}
        state = {"env_steps": self.env_steps, "rng": self.rng.bit_generator.state,
                 "envs": checkpoints.snapshot_env(self.envs), "observations": self.observations,
                 "episode_returns": self.episode_returns, "episode_lengths": self.episode_lengths}
        return arrays, state

    def restore(self, arrays, state):
        checkpoints.assign_arrays("network", self.model.variables, arrays)
        checkpoints.assign_arrays("optimizer", self.optimizer.variables, arrays)
        if self.acting_network is not None:
            self.acting_network.refresh()
        self.env_steps = state["env_steps"]
        self.rng.bit_generator.state = state["rng"]
        if state["envs"] is not None:
            checkpoints.restore_env(self.envs, state["envs"])
            self.observations = state["observations"]
            self.episode_returns, self.episode_lengths = state["episode_returns"], state["episode_lengths"]
        else:  # the environments' state was not plain data: start fresh episodes, seeded by the step count
            self.observations, _ = self.envs.reset(seed=self.config.seed + self.env_steps)


def _log_softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
