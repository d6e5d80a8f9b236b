"""The data of gaming RL: its Gymnasium environments. Making them, describing them, and playing greedy episodes
in lockstep.

Discrete observations (FrozenLake, Taxi) become one-hot float32 vectors, so every
network and every SavedModel takes `observations: float32 [None, obs_dim]`.
"""

import difflib
import functools
import io
import os

import gymnasium as gym
import numpy as np

from shared.errors import ConfigError

EVAL_SEED_OFFSET = 1_000_003  # evaluation and test episodes never share seeds with training
TEST_SEED_OFFSET = 2_000_003


class OneHotObservation(gym.ObservationWrapper):
    """Discrete(n) observations -> float32 one-hot vectors of length n."""

    def __init__(self, env):
        super().__init__(env)
        self.size = int(env.observation_space.n)
        self.observation_space = gym.spaces.Box(0.0, 1.0, (self.size,), np.float32)

    def observation(self, observation):
        one_hot = np.zeros(self.size, np.float32)
        one_hot[int(observation)] = 1.0
        return one_hot


def check_env_id(env_id):
    """Raise ConfigError unless `env_id` names a Gymnasium environment with discrete actions."""
    try:
        env = make_env(env_id)
    except gym.error.Error as error:
        close = difflib.get_close_matches(env_id, list(gym.registry), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"Unknown Gymnasium environment. Received: env_id={env_id!r} ({error}). Expected a registered id "
            f"such as CartPole-v1, Acrobot-v1, MountainCar-v0, LunarLander-v3, FrozenLake-v1.{hint}"
        ) from None
    with env:
        if not isinstance(env.action_space, gym.spaces.Discrete):
            raise ConfigError(
                f"Unsupported action space. Received: env_id={env_id!r} with {env.action_space}. "
                "Expected a Discrete action space (DQN and PPO here choose among discrete actions)."
            )
        if len(env.observation_space.shape) != 1:
            raise ConfigError(
                f"Unsupported observation space. Received: env_id={env_id!r} with {env.observation_space}. "
                "Expected a flat vector (Box of rank 1) or a Discrete space."
            )


def make_env(env_id, max_episode_steps=None, render_mode=None):
    if render_mode == "rgb_array":
        # Off-screen frames need no display; SDL's default video driver probes one and prints
        # "error: XDG_RUNTIME_DIR is invalid or not set" on headless machines.
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    env = gym.make(env_id, max_episode_steps=max_episode_steps, render_mode=render_mode)
    if isinstance(env.observation_space, gym.spaces.Discrete):
        env = OneHotObservation(env)
    return env


def make_vector_env(env_id, num_envs, max_episode_steps=None):
    """`num_envs` copies stepped together; a finished episode resets in the same step (final obs in info)."""
    factory = functools.partial(make_env, env_id, max_episode_steps)
    return gym.vector.SyncVectorEnv([factory] * num_envs, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


def describe(env_id, max_episode_steps=None):
    """What serving needs to know about an environment (JSON-serializable)."""
    with make_env(env_id, max_episode_steps) as env:
        base = env.unwrapped
        return {
            "env_id": env_id,
            "obs_dim": int(env.observation_space.shape[0]),
            "num_actions": int(env.action_space.n),
            "one_hot_size": env.size if isinstance(env, OneHotObservation) else None,
            "max_episode_steps": int(env.spec.max_episode_steps) if env.spec.max_episode_steps else None,
            "reward_threshold": env.spec.reward_threshold,
            "observation_space": str(base.observation_space),
        }


def sample_observations(env_id, count, seed, max_episode_steps=None):
    """`count` real observations from random play (for export checks and model signatures)."""
    observations = []
    rng = np.random.default_rng(seed)
    with make_env(env_id, max_episode_steps) as env:
        observation, _ = env.reset(seed=seed)
        while len(observations) < count:
            observations.append(observation)
            observation, _reward, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
            if terminated or truncated:
                observation, _ = env.reset()
    return np.asarray(observations, np.float32)


def play_episodes(act, env_id, episodes, seed, max_episode_steps=None):
    """Play `episodes` episodes in lockstep, one batched `act(observations) -> actions` call per step.

    Episode i is reset with seed `seed + i`, so the same policy always gets the same returns.
    Returns `(returns, lengths)` as float64 arrays.
    """
    envs = [make_env(env_id, max_episode_steps) for _ in range(episodes)]
    observations = np.stack([env.reset(seed=seed + index)[0] for index, env in enumerate(envs)]).astype(np.float32)
    returns = np.zeros(episodes)
    lengths = np.zeros(episodes)
    active = np.ones(episodes, bool)
    while active.any():
        indices = np.flatnonzero(active)
        actions = np.asarray(act(observations[indices])).reshape(-1)
        for index, action in zip(indices, actions):
            observation, reward, terminated, truncated, _ = envs[index].step(int(action))
            observations[index] = observation
            returns[index] += reward
            lengths[index] += 1
            if terminated or truncated:
                active[index] = False
    for env in envs:
        env.close()
    return returns, lengths


def episode_gif(act, env_id, seed, max_episode_steps=None, max_frames=250, fps=30):
    """Play one greedy episode rendered as `rgb_array` and return it as GIF bytes (every other frame, half size)."""
    import imageio.v3 as iio

    frames = []
    with make_env(env_id, max_episode_steps, render_mode="rgb_array") as env:
        observation, _ = env.reset(seed=seed)
        done = False
        step = 0
        while not done and len(frames) < max_frames:
            if step % 2 == 0:
                frames.append(env.render()[::2, ::2])
            action = np.asarray(act(np.asarray(observation, np.float32)[None])).reshape(-1)[0]
            observation, _reward, terminated, truncated, _ = env.step(int(action))
            done = terminated or truncated
            step += 1
    buffer = io.BytesIO()
    iio.imwrite(buffer, np.stack(frames), extension=".gif", duration=int(2000 / fps), loop=0)
    return buffer.getvalue()
