"""`AlphaZeroTask`: a policy/value network trained by self-play with MCTS on a two-player board game
(Connect Four, tic-tac-toe); serves the network's policy over the legal moves and its value.

There is no dataset: the game's rules (`boards.py`) are the data source (`game://connect4`). `fit` runs
`selfplay.train`; `evaluate` plays `test_games` against each opponent with a search through `serving` (the
in-memory endpoint in training, the reloaded SavedModel in `dlsuite evaluate`), and the raw network's greedy
move (no search) against the same opponents.
"""

import hashlib
import json

import numpy as np
import tensorflow as tf

from apps.gaming_rl import opponents, selfplay
from apps.gaming_rl.agents.alphazero import AlphaZeroAgent, compile_network, search_player, serving_evaluator
from apps.gaming_rl.board_checks import board_checks
from apps.gaming_rl.boards import GAMES
from apps.gaming_rl.models import build_policy_value_network
from apps.gaming_rl.tasks.base import solved_and_nan_guard
from shared.app import Data, DatasetRecord, DataSource, Endpoint, Report, Task

TEST_SEED_OFFSET = 100_000


class AlphaZeroTask(Task):
    app = "gaming_rl"
    monitor = "eval_score"  # the score against the first opponent: wins + draws / 2 per game
    monitor_mode = "max"
    headline = ("test_score", "max")
    step_key = "iteration"
    cannot_distribute = ("its self-play loop searches game trees in numpy between training rounds; data "
                         "parallelism does not apply to it.")

    # === Inputs ===

    def check_inputs(self, config, data_dir):
        return DataSource("game", config.game)

    def build_data(self, config, source):
        game = GAMES[config.game]
        info = {"game": game.name, "rows": game.rows, "cols": game.cols, "connect": game.connect,
                "gravity": game.gravity, "num_actions": game.num_actions, "algorithm": "alphazero"}
        fingerprint = hashlib.sha256(json.dumps(info, sort_keys=True).encode()).hexdigest()
        record = DatasetRecord(game.name, source.uri, "game", 0, fingerprint)
        return Data(test=random_positions(game, 32, config.seed + TEST_SEED_OFFSET), records=[record], info=info)

    # === Model and training ===

    def build_model(self, config, data):
        game = GAMES[config.game]
        model = build_policy_value_network(game.rows, game.cols, game.num_actions, filters=config.filters,
                                           residual_blocks=config.residual_blocks,
                                           value_hidden_units=config.value_hidden_units, l2=config.l2)
        return compile_network(model, config.learning_rate)

    def callbacks(self, config):
        return solved_and_nan_guard(self.monitor, config)

    def fit(self, model, data, config, callbacks, checkpoint_dir):
        selfplay.train(AlphaZeroAgent(model, config), model, config, [*self.callbacks(config), *callbacks],
                       checkpoint_dir)

    # === Serving and evaluation ===

    def endpoints(self, model, config, info):
        game = GAMES[info["game"]]

        def serve(boards):
            with tf.control_dependencies(board_checks(game, boards)):
                inputs = tf.cast(boards, tf.float32)
            outputs = model(inputs, training=False)
            empty = tf.equal(boards, 0)
            legal = tf.cast(empty[:, 0, :] if game.gravity else tf.reshape(empty, [-1, game.num_actions]),
                            tf.float32)
            policy = outputs["policy"] * legal
            total = tf.reduce_sum(policy, axis=1, keepdims=True)
            uniform = legal / tf.maximum(tf.reduce_sum(legal, axis=1, keepdims=True), 1.0)
            policy = tf.where(total > 1e-12, policy / tf.maximum(total, 1e-12), uniform)
            return {"policy": policy, "value": outputs["value"][:, 0]}

        return {"serving_default": Endpoint(serve, [tf.TensorSpec([None, game.rows, game.cols], tf.int8,
                                                                  name="boards")])}

    def example_inputs(self, data):
        return {"boards": data.test[:16]}

    def model_example(self, data):
        return data.test[:4].astype(np.float32)

    def evaluate(self, serving, data, config):
        game = GAMES[config.game]
        evaluate_boards = serving_evaluator(serving)
        searcher = search_player(game, evaluate_boards, config.eval_simulations, config.c_puct)

        def network_only(boards):
            return np.argmax(evaluate_boards(boards)[0], axis=1)

        metrics = {}
        for number, name in enumerate(config.opponents):
            seed = config.seed + TEST_SEED_OFFSET + number
            searched = opponents.play_match(game, searcher, opponents.make_opponent(
                name, game, seed, config.opponent_simulations), config.test_games)
            raw = opponents.play_match(game, network_only, opponents.make_opponent(
                name, game, seed, config.opponent_simulations), config.test_games)
            metrics.update({f"test_score_vs_{name}": searched["score"], f"test_losses_vs_{name}": searched["losses"],
                            f"test_network_score_vs_{name}": raw["score"]})
            if number == 0:
                metrics["test_score"] = searched["score"]
        return Report(metrics={key: float(value) for key, value in metrics.items()})


def random_positions(game, count, seed):
    """`count` boards from random legal play (1 to 3/4 of the board filled), all games still in progress:
    what the export is checked on. Connect Four's include full columns."""
    rng = np.random.default_rng(seed)
    found = []
    while len(found) < count:
        board = game.initial_boards(1)
        for _ in range(rng.integers(1, game.max_moves * 3 // 4)):
            action = rng.choice(np.flatnonzero(game.legal_mask(board)[0]))
            next_board, done, _ = game.play(board, [action])
            if done[0]:
                break
            board = next_board
        found.append(board[0])
    return np.stack(found)
