"""The AlphaZero agent: self-play with batched MCTS, a replay buffer of recent positions, training with
`model.fit` on (position, search policy, outcome), and matches against opponents.

Randomness after initialization (root noise, move sampling, minibatch sampling, mirroring) comes from one numpy
Generator, checkpointed with the buffer, the network and the optimizer (`checkpoint` / `restore`).
"""

import time

import keras
import numpy as np
import tensorflow as tf
import threadpoolctl

from apps.gaming_rl import checkpoints, mcts, opponents
from apps.gaming_rl.boards import GAMES
from apps.gaming_rl.numpy_policy import NumpyPolicyValueNetwork
from apps.gaming_rl.replay import RingBuffer


class PositionBuffer(RingBuffer):
    """A ring buffer of self-play positions: boards (int8), search policies and outcomes (for the player to
    move: 1 won, 0 draw, -1 lost)."""

    def __init__(self, capacity, game):
        super().__init__(capacity, {"boards": ((game.rows, game.cols), np.int8),
                                    "policies": ((game.num_actions,), np.float32), "outcomes": ((), np.float32)})

    def add(self, boards, policies, outcomes):
        indices = (self.position + np.arange(len(boards))) % self.capacity
        self.boards[indices], self.policies[indices], self.outcomes[indices] = boards, policies, outcomes
        self.position = int((self.position + len(boards)) % self.capacity)
        self.size = min(self.size + len(boards), self.capacity)


# Measured on the shared 2-core machine (connect4, 32 filters, 3 blocks; README): the compiled TensorFlow call
# wins from 64 boards on (4,451 vs 1,687 boards/s at 64, 7,837 vs 1,299 at 256), the numpy copy below 16 boards
# (577 vs 196 boards/s at 1), where TensorFlow's per-call overhead dominates. The numpy copy runs with one BLAS
# thread: OpenBLAS's threads fighting over busy cores made its small products 10x slower.
NUMPY_BELOW = 16


class NetworkEvaluator:
    """`evaluate(boards int8) -> (policies, values)` of the model, one call per batch of leaves: a compiled
    `tf.function` for batches of NUMPY_BELOW boards or more, the numpy copy of the network for smaller ones
    (the last games of a lockstep batch). `refresh()` after training copies the weights into the numpy copy."""

    def __init__(self, model, residual_blocks):
        self.numpy_network = NumpyPolicyValueNetwork(model, residual_blocks)
        self.threads = threadpoolctl.ThreadpoolController()
        self.predict = tf.function(lambda boards: model(boards, training=False), reduce_retracing=True,
                                   input_signature=[tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)])

    def refresh(self):
        self.numpy_network.refresh()

    def __call__(self, boards):
        if len(boards) < NUMPY_BELOW:
            with self.threads.limit(limits=1, user_api="blas"):
                return self.numpy_network(boards)
        outputs = self.predict(tf.constant(np.asarray(boards, np.float32)))
        return outputs["policy"].numpy(), outputs["value"].numpy()[:, 0]


def serving_evaluator(serving):
    """`evaluate(boards)` through a `shared.export.Serving` (the in-memory endpoint or the SavedModel)."""
    def evaluate(boards):
        outputs = serving(boards=np.asarray(boards, np.int8))
        return outputs["policy"], outputs["value"]

    return evaluate


def search_player(game, evaluate, simulations, c_puct):
    """`actions(boards)`: the most visited move of a noise-free search of `simulations` per board."""
    search = mcts.BatchedMCTS(game, evaluate, c_puct=c_puct)

    def actions(boards):
        return np.argmax(search.search(boards, simulations)[0], axis=1)

    actions.search = search
    return actions


class AlphaZeroAgent:
    def __init__(self, model, config):
        self.model, self.config = model, config
        self.game = GAMES[config.game]
        self.buffer = PositionBuffer(config.buffer_positions, self.game)
        self.rng = np.random.default_rng(config.seed)
        self.evaluate = NetworkEvaluator(model, config.residual_blocks)
        self.search = mcts.BatchedMCTS(self.game, self.evaluate, config.c_puct, config.dirichlet_alpha,
                                       config.dirichlet_fraction)
        self.games_played, self.positions_seen = 0, 0

    # === Self-play ===

    def self_play(self):
        """Play `games_per_iteration` games in lockstep and add their positions to the buffer; return logs."""
        config, game = self.config, self.game
        count = config.games_per_iteration
        boards = game.initial_boards(count)
        moves = np.zeros(count, np.int64)
        active = np.ones(count, bool)
        history = [[] for _ in range(count)]  # per game: (board, search policy)
        winners_last_mover = np.zeros(count, bool)
        started, simulations_before = time.perf_counter(), self.search.simulations_done
        while active.any():
            playing = np.flatnonzero(active)
            visits, _ = self.search.search(boards[playing], config.simulations, self.rng, add_noise=True)
            policies = visits / visits.sum(axis=1, keepdims=True)
            actions = mcts.choose_actions(visits, self.rng, moves[playing] < config.temperature_moves)
            for number, board, policy in zip(playing, boards[playing], policies):
                history[number].append((board, policy))
            next_boards, done, mover_won = game.play(boards[playing], actions)
            boards[playing] = next_boards
            moves[playing] += 1
            winners_last_mover[playing[done]] = mover_won[done]
            active[playing[done]] = False
        seconds = time.perf_counter() - started
        positions = []
        for number, positions_of_game in enumerate(history):
            length = len(positions_of_game)
            # the last mover won (+1) or drew (0); each earlier position alternates sides
            outcome = 1.0 if winners_last_mover[number] else 0.0
            signs = np.where((length - 1 - np.arange(length)) % 2 == 0, 1.0, -1.0)
            boards_of_game = np.stack([board for board, _ in positions_of_game])
            policies_of_game = np.stack([policy for _, policy in positions_of_game])
            positions.append((boards_of_game, policies_of_game, (outcome * signs).astype(np.float32)))
        for boards_of_game, policies_of_game, outcomes in positions:
            self.buffer.add(boards_of_game, policies_of_game, outcomes)
        total_positions = int(moves.sum())
        self.games_played += count
        self.positions_seen += total_positions
        simulations = self.search.simulations_done - simulations_before
        first_player_wins = np.mean(winners_last_mover & (moves % 2 == 1))
        return {"self_play_games": float(self.games_played), "game_length_mean": float(moves.mean()),
                "first_player_win_rate": float(first_player_wins),
                "draw_rate": float(np.mean(~winners_last_mover)),
                "positions_per_second": total_positions / seconds, "simulations_per_second": simulations / seconds,
                "self_play_seconds": seconds, "replay_size": float(self.buffer.size)}

    # === Learning ===

    def train(self, callbacks):
        """`training_steps` minibatches drawn from the buffer, each position moved by a random symmetry of the
        board (`Game.augment`), through `model.fit`."""
        config = self.config
        count = config.training_steps * config.batch_size
        indices = self.rng.integers(0, self.buffer.size, count)
        boards, policies = self.game.augment(self.buffer.boards[indices], self.buffer.policies[indices], self.rng)
        history = self.model.fit(
            boards.astype(np.float32), {"policy": policies, "value": self.buffer.outcomes[indices][:, None]},
            batch_size=config.batch_size, epochs=1, shuffle=False, verbose=0, callbacks=callbacks)
        self.evaluate.refresh()
        return {key: float(values[-1]) for key, values in history.history.items()}

    # === Evaluation ===

    def match(self, opponent_name, num_games, seed):
        config = self.config
        player = search_player(self.game, self.evaluate, config.eval_simulations, config.c_puct)
        opponent = opponents.make_opponent(opponent_name, self.game, seed, config.opponent_simulations)
        return opponents.play_match(self.game, player, opponent, num_games)

    # === Checkpoint ===

    def checkpoint(self):
        arrays = {**checkpoints.variables_to_arrays("network", self.model.variables),
                  **checkpoints.variables_to_arrays("optimizer", self.model.optimizer.variables),
                  **self.buffer.to_arrays()}
        state = {"rng": self.rng.bit_generator.state, "games_played": self.games_played,
                 "positions_seen": self.positions_seen}
        return arrays, state

    def restore(self, arrays, state):
        checkpoints.assign_arrays("network", self.model.variables, arrays)
        if not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        checkpoints.assign_arrays("optimizer", self.model.optimizer.variables, arrays)
        self.buffer.load_arrays(arrays)
        self.rng.bit_generator.state = state["rng"]
        self.games_played, self.positions_seen = state["games_played"], state["positions_seen"]
        self.evaluate.refresh()


def compile_network(model, learning_rate):
    """Cross-entropy to the search policy plus squared error to the outcome (AlphaZero's loss; the L2 term is
    in the layers' regularizers)."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss={"policy": keras.losses.CategoricalCrossentropy(), "value": keras.losses.MeanSquaredError()})
    return model
