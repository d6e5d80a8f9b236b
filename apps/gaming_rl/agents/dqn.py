"""Double DQN: replay buffer, target network, Huber loss, epsilon-greedy, optional n-step returns.

Training rounds run `gradient_steps` updates inside one compiled `tf.function`, on
minibatches drawn by a numpy Generator (so a checkpoint restores the exact sampling).
"""

import collections

import keras
import numpy as np
import tensorflow as tf

from apps.gaming_rl import checkpoints, loop
from apps.gaming_rl import data as environments
from apps.gaming_rl.numpy_policy import ACTIVATIONS, NumpyQNetwork
from apps.gaming_rl.replay import RingBuffer
from shared.optimizers import get_optimizer


class ReplayBuffer(RingBuffer):
    """A ring buffer of n-step transitions: `discounts` is gamma**n, or 0 when the episode terminated."""

    def __init__(self, capacity, obs_dim):
        super().__init__(capacity, {"observations": ((obs_dim,), np.float32), "actions": ((), np.int32),
                                    "returns": ((), np.float32), "next_observations": ((obs_dim,), np.float32),
                                    "discounts": ((), np.float32)})

    def add(self, observation, action, discounted_return, next_observation, discount):
        index = self.position
        self.observations[index], self.actions[index], self.returns[index] = observation, action, discounted_return
        self.next_observations[index], self.discounts[index] = next_observation, discount
        self.position = (self.position + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, rng, num_batches, batch_size):
        indices = rng.integers(0, self.size, (num_batches, batch_size))
        return [getattr(self, field)[indices] for field in self.fields]


class DQNAgent:
    def __init__(self, model, config, info):
        self.model, self.config = model, config
        self.num_actions = info["num_actions"]
        self.target_model = keras.models.clone_model(model)
        self.target_model.set_weights(model.get_weights())
        self.optimizer = get_optimizer("adam", config.learning_rate)
        self.optimizer.build(model.trainable_variables)
        self.buffer = ReplayBuffer(config.buffer_size, info["obs_dim"])
        self.rng = np.random.default_rng(config.seed)
        self.env = environments.make_env(config.env_id, config.max_episode_steps)
        self.observation, _ = self.env.reset(seed=config.seed)
        self.env_steps = 0
        self.pending = collections.deque()  # (observation, action, reward) not yet long enough for n steps
        self.episode_return, self.episode_length = 0.0, 0
        signature = [tf.TensorSpec([None, info["obs_dim"]], tf.float32)]
        self._q_values = tf.function(self._q_values_eager, input_signature=signature)
        self.acting_network = None  # numpy copy of the Q-network for one-observation steps, when it can be made
        if config.activation in ACTIVATIONS:
            self.acting_network = NumpyQNetwork(model, len(config.hidden_units), config.activation, config.dueling)
        self._train_round = tf.function(self._train_round_eager, reduce_retracing=True)
        self.huber = keras.losses.Huber(delta=1.0, reduction="none")

    # === Acting ===

    def epsilon(self):
        decay_steps = self.config.exploration_fraction * self.config.total_env_steps
        fraction = min(1.0, self.env_steps / decay_steps) if decay_steps else 1.0
        return self.config.initial_epsilon + fraction * (self.config.final_epsilon - self.config.initial_epsilon)

    def _q_values_eager(self, observations):
        return self.model(observations, training=False)

    def greedy_actions(self, observations):
        return np.argmax(self._q_values(np.asarray(observations, np.float32)).numpy(), axis=-1)

    def _act_greedy_once(self, observation):
        if self.acting_network is None:
            return self.greedy_actions(observation[None])[0]
        return np.argmax(self.acting_network(observation[None])[0])

    def train_until(self, env_steps, on_update):
        config = self.config
        losses, finished_returns, finished_lengths = [], [], []
        while self.env_steps < env_steps:
            epsilon = self.epsilon()
            if self.rng.random() < epsilon:
                action = int(self.rng.integers(self.num_actions))
            else:
                action = int(self._act_greedy_once(self.observation))
            next_observation, reward, terminated, truncated, _ = self.env.step(action)
            self.env_steps += 1
            self.episode_return += float(reward)
            self.episode_length += 1
            self._remember(self.observation, action, float(reward), next_observation, terminated, truncated)
            self.observation = next_observation
            if terminated or truncated:
                finished_returns.append(self.episode_return)
                finished_lengths.append(self.episode_length)
                self.episode_return, self.episode_length = 0.0, 0
                self.observation, _ = self.env.reset()
            if (self.env_steps >= config.learning_starts and self.env_steps % config.train_frequency == 0
                    and self.buffer.size >= config.batch_size):
                batches = self.buffer.sample(self.rng, config.gradient_steps, config.batch_size)
                losses.append(float(self._train_round(*batches)))
                if self.acting_network is not None:
                    self.acting_network.refresh()
                if on_update(losses[-1]):
                    break
            if self.env_steps % config.target_update_interval == 0:
                self.target_model.set_weights(self.model.get_weights())
        logs = {"epsilon": self.epsilon(), "replay_size": float(self.buffer.size),
                **loop.episode_statistics(finished_returns, finished_lengths)}
        if losses:
            logs["loss"] = float(np.mean(losses)) if np.all(np.isfinite(losses)) else float("nan")
        return logs

    def _remember(self, observation, action, reward, next_observation, terminated, truncated):
        """Queue the transition; emit n-step transitions once n are queued, and all of them at an episode's end."""
        gamma, n_step = self.config.gamma, self.config.n_step
        self.pending.append((observation, action, reward))
        episode_over = terminated or truncated
        while self.pending and (len(self.pending) >= n_step or episode_over):
            discounted = sum(gamma**index * step[2] for index, step in enumerate(self.pending))
            discount = 0.0 if terminated else gamma ** len(self.pending)
            first_observation, first_action, _ = self.pending.popleft()
            self.buffer.add(first_observation, first_action, discounted, next_observation, discount)

    # === Learning ===

    def _train_round_eager(self, observations, actions, returns, next_observations, discounts):
        total = tf.constant(0.0)
        num_batches = tf.shape(observations)[0]
        for index in tf.range(num_batches):
            total += self._gradient_step(observations[index], actions[index], returns[index],
                                         next_observations[index], discounts[index])
        return total / tf.cast(num_batches, tf.float32)

    def _gradient_step(self, observations, actions, returns, next_observations, discounts):
        next_target_values = self.target_model(next_observations, training=False)
        if self.config.double_dqn:
            next_actions = tf.argmax(self.model(next_observations, training=False), axis=-1, output_type=tf.int32)
        else:
            next_actions = tf.argmax(next_target_values, axis=-1, output_type=tf.int32)
        next_values = tf.gather(next_target_values, next_actions, batch_dims=1)
        targets = tf.stop_gradient(returns + discounts * next_values)
        with tf.GradientTape() as tape:
            chosen = tf.gather(self.model(observations, training=True), actions, batch_dims=1)
            loss = tf.reduce_mean(self.huber(targets[:, None], chosen[:, None]))
        gradients = tape.gradient(loss, self.model.trainable_variables)
        gradients, _ = tf.clip_by_global_norm(gradients, self.config.max_grad_norm)
        self.optimizer.apply_gradients(zip(gradients, self.model.trainable_variables))
        return loss

    # === Checkpoint ===

    def checkpoint(self):
        arrays = {**checkpoints.variables_to_arrays("online", self.model.variables),
                  **checkpoints.variables_to_arrays("target", self.target_model.variables),
                  **checkpoints.variables_to_arrays("optimizer", self.optimizer.variables),
                  **self.buffer.to_arrays()}
        state = {"env_steps": self.env_steps, "rng": self.rng.bit_generator.state,
                 "env": checkpoints.snapshot_env(self.env), "observation": self.observation,
                 "pending": list(self.pending), "episode_return": self.episode_return,
                 "episode_length": self.episode_length}
        return arrays, state

    def restore(self, arrays, state):
        checkpoints.assign_arrays("online", self.model.variables, arrays)
        checkpoints.assign_arrays("target", self.target_model.variables, arrays)
        checkpoints.assign_arrays("optimizer", self.optimizer.variables, arrays)
        self.buffer.load_arrays(arrays)
        if self.acting_network is not None:
            self.acting_network.refresh()
        self.env_steps = state["env_steps"]
        self.rng.bit_generator.state = state["rng"]
        self.pending = collections.deque(state["pending"])
        if state["env"] is not None:
            checkpoints.restore_env(self.env, state["env"])
            self.observation = state["observation"]
            self.episode_return, self.episode_length = state["episode_return"], state["episode_length"]
        else:  # the environment's state was not plain data: start a fresh episode, seeded by the step count
            self.pending.clear()
            self.observation, _ = self.env.reset(seed=self.config.seed + self.env_steps)
            self.episode_return, self.episode_length = 0.0, 0
