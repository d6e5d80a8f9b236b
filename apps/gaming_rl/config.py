"""Gaming RL configs and presets, one task per environment and algorithm. No TensorFlow here.

Every hyperparameter is a config field; each environment has its own `default`
preset (the benchmark settings) and a `smoke` preset that runs in seconds.
"""

import dataclasses
import functools
import typing

from shared.checks import check_choice, check_range, check_sizes
from shared.config import BaseConfig, TaskSpec
from shared.errors import ConfigError
from shared.optimizers import ACTIVATIONS


@dataclasses.dataclass(frozen=True)
class RLConfig(BaseConfig):
    """Fields every agent has. One "epoch" is `eval_interval` environment steps followed by a greedy evaluation."""

    env_id: str = "CartPole-v1"
    max_episode_steps: typing.Optional[int] = None  # None: the environment's own time limit
    total_env_steps: int = 50_000
    eval_interval: int = 5_000
    eval_episodes: int = 20
    test_episodes: int = 100
    solved_threshold: typing.Optional[float] = None  # stop once the evaluation return holds this
    solved_patience: int = 1  # consecutive evaluations at or above the threshold
    hidden_units: typing.Tuple[int, ...] = (64, 64)
    activation: str = "relu"
    learning_rate: float = 1e-3
    anneal_learning_rate: bool = False  # linear decay to 0 over total_env_steps
    gamma: float = 0.99
    max_grad_norm: float = 10.0
    gif_max_frames: int = 250

    UNKNOWN_KEY_HINTS = {"precision": "The RL agents train in float32 only: their networks are a few 64-unit layers "
                                      "stepped one environment batch at a time, where 16-bit math saves nothing."}

    def __post_init__(self):
        super().__post_init__()
        if not self.env_id or not isinstance(self.env_id, str):
            raise ConfigError(f"Invalid value for config key env_id. Received: env_id={self.env_id!r}. "
                              "Expected a Gymnasium id such as 'CartPole-v1'.")
        check_range("max_episode_steps", self.max_episode_steps, 1)
        check_range("total_env_steps", self.total_env_steps, 1)
        check_range("eval_interval", self.eval_interval, 1)
        check_range("eval_episodes", self.eval_episodes, 1)
        check_range("test_episodes", self.test_episodes, 1)
        check_range("solved_patience", self.solved_patience, 1)
        check_sizes("hidden_units", self.hidden_units, "64,64")
        check_choice("activation", self.activation, ACTIVATIONS)
        check_range("learning_rate", self.learning_rate, 0, low_inclusive=False)
        check_range("gamma", self.gamma, 0, 1)
        check_range("max_grad_norm", self.max_grad_norm, 0, low_inclusive=False)
        check_range("gif_max_frames", self.gif_max_frames, 0)


@dataclasses.dataclass(frozen=True)
class DQNConfig(RLConfig):
    """Double DQN with a replay buffer, a target network, Huber loss, epsilon-greedy, optional dueling and n-step."""

    buffer_size: int = 50_000
    batch_size: int = 64
    learning_starts: int = 1_000
    train_frequency: int = 256  # env steps between training rounds
    gradient_steps: int = 128  # gradient steps per training round
    target_update_interval: int = 256  # env steps between target-network syncs
    exploration_fraction: float = 0.16  # of total_env_steps over which epsilon decays linearly
    initial_epsilon: float = 1.0
    final_epsilon: float = 0.04
    double_dqn: bool = True
    dueling: bool = False
    n_step: int = 1

    def __post_init__(self):
        super().__post_init__()
        check_range("buffer_size", self.buffer_size, self.batch_size)
        check_range("batch_size", self.batch_size, 1)
        check_range("learning_starts", self.learning_starts, 0)
        check_range("train_frequency", self.train_frequency, 1)
        check_range("gradient_steps", self.gradient_steps, 1)
        check_range("target_update_interval", self.target_update_interval, 1)
        check_range("exploration_fraction", self.exploration_fraction, 0, 1)
        check_range("initial_epsilon", self.initial_epsilon, 0, 1)
        check_range("final_epsilon", self.final_epsilon, 0, self.initial_epsilon)
        check_range("n_step", self.n_step, 1, 100)


@dataclasses.dataclass(frozen=True)
class PPOConfig(RLConfig):
    """PPO with the clipped objective, GAE, an entropy bonus and `gymnasium.vector` environments."""

    num_envs: int = 8
    rollout_steps: int = 32  # per environment; a rollout is num_envs * rollout_steps transitions
    num_epochs: int = 10
    num_minibatches: int = 1
    clip_range: float = 0.2
    gae_lambda: float = 0.95
    entropy_coefficient: float = 0.0
    value_coefficient: float = 0.5
    normalize_advantages: bool = True

    def __post_init__(self):
        super().__post_init__()
        check_range("num_envs", self.num_envs, 1, 256)
        check_range("rollout_steps", self.rollout_steps, 1)
        check_range("num_epochs", self.num_epochs, 1)
        check_range("num_minibatches", self.num_minibatches, 1, self.num_envs * self.rollout_steps)
        check_range("clip_range", self.clip_range, 0, 1, low_inclusive=False)
        check_range("gae_lambda", self.gae_lambda, 0, 1)
        check_range("entropy_coefficient", self.entropy_coefficient, 0)
        check_range("value_coefficient", self.value_coefficient, 0)


# === Presets: the benchmark settings of each environment ===


def cartpole_dqn():
    """rl-zoo-like rounds (128 updates every 256 steps, target synced after each, small final epsilon) plus
    3-step returns; a 10-episode greedy evaluation every 1,000 steps catches the first solving policy."""
    return DQNConfig(
        env_id="CartPole-v1", total_env_steps=50_000, eval_interval=1_000, eval_episodes=10, solved_threshold=475.0,
        hidden_units=(256, 256), learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1_000,
        train_frequency=256, gradient_steps=128, target_update_interval=256, exploration_fraction=0.16,
        final_epsilon=0.04, gamma=0.99, n_step=3,
    )


def cartpole_ppo():
    return PPOConfig(
        env_id="CartPole-v1", total_env_steps=100_000, eval_interval=4_096, solved_threshold=475.0,
        hidden_units=(64, 64), activation="tanh", learning_rate=1e-3, anneal_learning_rate=True, num_envs=8,
        rollout_steps=32, num_epochs=20, num_minibatches=1, gamma=0.98, gae_lambda=0.8, max_grad_norm=0.5,
    )


def acrobot_dqn():
    return DQNConfig(
        env_id="Acrobot-v1", total_env_steps=100_000, eval_interval=5_000, solved_threshold=-100.0,
        solved_patience=2, hidden_units=(256, 256), learning_rate=6.3e-4, batch_size=128, buffer_size=50_000,
        learning_starts=0, train_frequency=4, gradient_steps=1, target_update_interval=250,
        exploration_fraction=0.12, final_epsilon=0.1, n_step=3,
    )


def acrobot_ppo():
    return PPOConfig(
        env_id="Acrobot-v1", total_env_steps=200_000, eval_interval=8_192, solved_threshold=-80.0,
        solved_patience=2, hidden_units=(64, 64), activation="tanh", learning_rate=1e-3, anneal_learning_rate=True,
        num_envs=16, rollout_steps=256, num_epochs=4, num_minibatches=4, gamma=0.99, gae_lambda=0.94,
        entropy_coefficient=0.0, max_grad_norm=0.5,
    )


def mountaincar_dqn():
    return DQNConfig(
        env_id="MountainCar-v0", total_env_steps=120_000, eval_interval=10_000, solved_threshold=-110.0,
        hidden_units=(256, 256), learning_rate=4e-3, batch_size=128, buffer_size=10_000, learning_starts=1_000,
        train_frequency=16, gradient_steps=8, target_update_interval=600, exploration_fraction=0.2,
        final_epsilon=0.07, gamma=0.98,
    )


def lunarlander_dqn():
    return DQNConfig(
        env_id="LunarLander-v3", total_env_steps=300_000, eval_interval=20_000, eval_episodes=10,
        solved_threshold=200.0, solved_patience=2, hidden_units=(256, 256), learning_rate=6.3e-4, batch_size=128,
        buffer_size=50_000, learning_starts=0, train_frequency=4, gradient_steps=1, target_update_interval=250,
        exploration_fraction=0.12, final_epsilon=0.1, n_step=3,
    )


def lunarlander_ppo():
    """rl-zoo's tuned PPO: 16 envs x 1024 steps, minibatches of 64 (256 per epoch), 4 epochs, gamma 0.999;
    61 rollouts of 16,384 steps (999,424) stay within 1M env steps. Stops once two 20-episode evaluations hold 230."""
    return PPOConfig(
        env_id="LunarLander-v3", total_env_steps=999_424, eval_interval=32_768, eval_episodes=20,
        solved_threshold=230.0, solved_patience=2, hidden_units=(64, 64), activation="tanh", learning_rate=3e-4,
        num_envs=16, rollout_steps=1024, num_epochs=4, num_minibatches=256, gamma=0.999, gae_lambda=0.98,
        entropy_coefficient=0.01, max_grad_norm=0.5,
    )


def frozenlake_dqn():
    """FrozenLake-v1 (slippery 4x4) with one-hot observations; solved around a 0.7 success rate."""
    return DQNConfig(
        env_id="FrozenLake-v1", total_env_steps=30_000, eval_interval=2_500, eval_episodes=100,
        solved_threshold=0.7, solved_patience=2, hidden_units=(64,), learning_rate=1e-3, batch_size=64,
        buffer_size=20_000, learning_starts=500, train_frequency=4, gradient_steps=1, target_update_interval=500,
        exploration_fraction=0.3, final_epsilon=0.05,
    )


def smoke(preset):
    """A few hundred environment steps on a tiny network: seconds. For CI and trying the pipeline."""
    config = preset()
    changes = dict(total_env_steps=512, eval_interval=256, eval_episodes=2, test_episodes=2, max_episode_steps=100,
                   hidden_units=(16, 16), gif_max_frames=20, solved_patience=1)
    if isinstance(config, DQNConfig):
        changes.update(buffer_size=1_000, batch_size=32, learning_starts=64, train_frequency=32, gradient_steps=4,
                       target_update_interval=64, n_step=min(config.n_step, 2))
    else:
        changes.update(num_envs=2, rollout_steps=64, num_epochs=2, num_minibatches=2)
    return dataclasses.replace(config, **changes)


def _task(description, preset, config_class):
    algorithm = config_class.__name__.removesuffix("Config")  # DQN, PPO: tasks/dqn.py, tasks/ppo.py
    return TaskSpec(
        description=description, config_class=config_class,
        presets={"default": preset, "smoke": functools.partial(smoke, preset)},
        task_class=f"apps.gaming_rl.tasks.{algorithm.lower()}:{algorithm}Task",
    )


TASKS = {
    "cartpole-dqn": _task("CartPole-v1, double DQN; solved at a greedy return of 475.", cartpole_dqn, DQNConfig),
    "cartpole-ppo": _task("CartPole-v1, PPO on 8 vectorized envs; solved at 475.", cartpole_ppo, PPOConfig),
    "acrobot-dqn": _task("Acrobot-v1, double DQN with 3-step returns; target -100.", acrobot_dqn, DQNConfig),
    "acrobot-ppo": _task("Acrobot-v1, PPO on 16 vectorized envs; target -100.", acrobot_ppo, PPOConfig),
    "mountaincar-dqn": _task("MountainCar-v0, double DQN; target -110.", mountaincar_dqn, DQNConfig),
    "lunarlander-dqn": _task("LunarLander-v3, double DQN with 3-step returns; target 200.", lunarlander_dqn,
                             DQNConfig),
    "lunarlander-ppo": _task("LunarLander-v3, PPO on 16 vectorized envs; target 200.", lunarlander_ppo, PPOConfig),
    "frozenlake-dqn": _task("FrozenLake-v1 (slippery), one-hot observations, DQN; success rate.", frozenlake_dqn,
                            DQNConfig),
}


# === Self-play (AlphaZero) on two-player board games ===

BOARD_GAMES = ("connect4", "tictactoe")
BOARD_CELLS = {"connect4": 42, "tictactoe": 9}  # the longest game, in moves
OPPONENTS = ("random", "minimax", "mcts")


@dataclasses.dataclass(frozen=True)
class AlphaZeroConfig(BaseConfig):
    """AlphaZero: self-play games searched by PUCT MCTS guided by a policy/value network, which learns from
    them. One "epoch" is one iteration: `games_per_iteration` self-play games in lockstep, then
    `training_steps` minibatches from the replay buffer, then (every `eval_interval` iterations) matches
    against `opponents`."""

    game: str = "connect4"
    iterations: int = 100
    max_train_seconds: typing.Optional[float] = None  # no iteration starts that would end past this wall time
    games_per_iteration: int = 64  # played in lockstep: their leaves are evaluated in one batch
    simulations: int = 100  # MCTS simulations per self-play move
    c_puct: float = 1.5
    dirichlet_alpha: float = 0.8  # root noise, scaled to the number of legal moves (AlphaZero: 0.3 chess, 0.03 go)
    dirichlet_fraction: float = 0.25
    temperature_moves: int = 8  # moves sampled in proportion to visit counts; later ones take the most visited
    buffer_positions: int = 50_000  # the replay buffer: the most recent self-play positions
    training_steps: int = 100  # minibatches per iteration
    batch_size: int = 256
    learning_rate: float = 2e-3
    l2: float = 1e-4
    filters: int = 32
    residual_blocks: int = 3
    value_hidden_units: int = 64
    eval_interval: int = 1  # iterations between evaluations
    eval_games: int = 20  # per opponent, first player alternating
    eval_simulations: int = 100  # the agent's search budget per move in evaluation and test games
    opponents: typing.Tuple[str, ...] = ("mcts", "random")  # the first is the monitored one (eval_score)
    opponent_simulations: int = 100  # OpenSpiel MCTS's simulations per move (random rollouts)
    test_games: int = 40
    solved_threshold: typing.Optional[float] = None  # stop once eval_score holds this for solved_patience evaluations
    solved_patience: int = 1

    UNKNOWN_KEY_HINTS = RLConfig.UNKNOWN_KEY_HINTS

    def __post_init__(self):
        super().__post_init__()
        check_choice("game", self.game, BOARD_GAMES)
        for key in ("iterations", "games_per_iteration", "simulations", "training_steps", "batch_size", "filters",
                    "value_hidden_units", "eval_interval", "eval_games", "eval_simulations", "opponent_simulations",
                    "test_games", "solved_patience"):
            check_range(key, getattr(self, key), 1)
        check_range("max_train_seconds", self.max_train_seconds, 0, low_inclusive=False)
        check_range("residual_blocks", self.residual_blocks, 0, 40)
        check_range("c_puct", self.c_puct, 0, low_inclusive=False)
        check_range("dirichlet_alpha", self.dirichlet_alpha, 0, low_inclusive=False)
        check_range("dirichlet_fraction", self.dirichlet_fraction, 0, 1)
        check_range("temperature_moves", self.temperature_moves, 0)
        # The buffer holds at least one minibatch and a whole iteration of games (at most every cell filled).
        check_range("buffer_positions", self.buffer_positions,
                    max(self.batch_size, self.games_per_iteration * BOARD_CELLS.get(self.game, 0)))
        check_range("learning_rate", self.learning_rate, 0, low_inclusive=False)
        check_range("l2", self.l2, 0)
        check_range("solved_threshold", self.solved_threshold, 0, 1)
        if not self.opponents or not isinstance(self.opponents, tuple):
            raise ConfigError(f"Invalid value for config key opponents. Received: opponents={self.opponents!r}. "
                              f"Expected one or more of {', '.join(OPPONENTS)}, e.g. --set opponents=mcts,random.")
        for opponent in self.opponents:
            check_choice("opponents", opponent, OPPONENTS)
        if "minimax" in self.opponents and self.game != "tictactoe":
            raise ConfigError(f"Exhaustive minimax only solves tic-tac-toe here. Received: game={self.game!r} with "
                              f"opponents={self.opponents!r}. Expected 'mcts' or 'random' for {self.game}. Fix: "
                              "--set opponents=mcts,random.")


def connect4_alphazero():
    """Connect Four, the benchmark's settings: an hour of iterations of 256 lockstep games (leaf batches of 256
    are where the compiled network is fastest) searched with 64 simulations per move, a 3-block 32-filter
    tower, scored every fourth iteration against OpenSpiel's MCTS with 1,000 random-rollout simulations."""
    return AlphaZeroConfig(
        game="connect4", iterations=1_000, max_train_seconds=3_600, games_per_iteration=256, simulations=64,
        dirichlet_alpha=0.8, temperature_moves=8, buffer_positions=100_000, training_steps=200, batch_size=256,
        learning_rate=2e-3, filters=32, residual_blocks=3, value_hidden_units=64, eval_interval=4, eval_games=10,
        eval_simulations=100, opponents=("mcts", "random"), opponent_simulations=1_000, test_games=40,
    )


def tictactoe_alphazero():
    """Tic-tac-toe: small searches and a 2-block tower; perfect play against exhaustive minimax is a draw
    (score 0.5), so the target is never losing."""
    return AlphaZeroConfig(
        game="tictactoe", iterations=12, games_per_iteration=64, simulations=32, dirichlet_alpha=1.0,
        temperature_moves=4, buffer_positions=10_000, training_steps=60, batch_size=128, learning_rate=3e-3,
        filters=32, residual_blocks=2, value_hidden_units=32, eval_interval=3, eval_games=20, eval_simulations=32,
        opponents=("minimax", "random"), test_games=40,
    )


def smoke_alphazero(preset):
    """Two tiny iterations: seconds. For CI and trying the pipeline."""
    return dataclasses.replace(
        preset(), iterations=2, games_per_iteration=4, simulations=8, buffer_positions=2_000, training_steps=4,
        batch_size=32, filters=8, residual_blocks=1, value_hidden_units=16, eval_games=2, eval_simulations=8,
        opponent_simulations=20, test_games=2,
    )


def _alphazero_task(description, preset):
    return TaskSpec(description=description, config_class=AlphaZeroConfig,
                    presets={"default": preset, "smoke": functools.partial(smoke_alphazero, preset)},
                    task_class="apps.gaming_rl.tasks.alphazero:AlphaZeroTask")


TASKS.update({
    "connect4-alphazero": _alphazero_task("Connect Four (6x7), AlphaZero self-play: MCTS + policy/value net; "
                                          "scored against OpenSpiel MCTS.", connect4_alphazero),
    "tictactoe-alphazero": _alphazero_task("Tic-tac-toe, AlphaZero self-play; never losing to exhaustive minimax.",
                                           tictactoe_alphazero),
})
