"""The board rules against OpenSpiel's, the numpy board checks, the minimax opponent and the batched search."""

import numpy as np
import pytest

from apps.gaming_rl import mcts, opponents
from apps.gaming_rl.boards import CONNECT_FOUR, GAMES, TIC_TAC_TOE


@pytest.mark.parametrize("name", list(GAMES))
def test_rules_match_openspiel_on_random_games(name):
    import pyspiel

    game = GAMES[name]
    spiel_game = pyspiel.load_game(opponents.OPENSPIEL_GAMES[name])
    rng = np.random.default_rng(0)
    outcomes = set()
    for _ in range(300):
        state, board, mover = spiel_game.new_initial_state(), game.initial_boards(1), 0
        while True:
            legal = np.flatnonzero(game.legal_mask(board)[0])
            assert legal.tolist() == state.legal_actions()
            action = int(rng.choice(legal))
            state.apply_action(action)
            board, done, mover_won = game.play(board, [action])
            assert bool(done[0]) == state.is_terminal()
            if done[0]:
                winner = mover if mover_won[0] else None
                returns = state.returns()
                assert winner == (None if returns[0] == 0 else int(np.argmax(returns)))
                outcomes.add(winner)
                break
            mover = 1 - mover
    assert {0, 1} <= outcomes  # wins of both sides compared (and draws: random Connect Four games rarely draw)
    assert None in outcomes or name == "connect4"


def test_board_problems_name_what_is_wrong():
    good = CONNECT_FOUR.initial_boards(1)[0]
    good[5, 3], good[5, 4] = -1, 1
    values, counts, floating, line = (good.copy() for _ in range(4))
    values[0, 0] = 2
    counts[5, 0] = counts[5, 1] = -1
    floating[3, 0] = -1
    line[5, :3] = -1  # with (5, 3): four in a row
    line[4, :3] = 1
    problems = CONNECT_FOUR.problems(np.stack([good, values, counts, floating, line]))
    assert problems[0] == ""
    assert "values outside" in problems[1] and "opponent must have" in problems[2]
    assert "above an empty cell" in problems[3] and "4 in a row" in problems[4]
    drawn = np.array([[[-1, 1, -1], [-1, 1, 1], [1, -1, -1]]], np.int8)  # X (-1) five stones, O four, no line
    assert "full board" in TIC_TAC_TOE.problems(drawn)[0]


def test_mirror_keeps_policies_aligned_with_boards():
    board = np.zeros((1, 3, 3), np.int8)
    board[0, 0, 0] = 1
    policy = np.zeros((1, 9), np.float32)
    policy[0, 2] = 1.0  # the cell (0, 2)
    mirrored_board, mirrored_policy = TIC_TAC_TOE.mirror_boards(board), TIC_TAC_TOE.mirror_policies(policy)
    assert mirrored_board[0, 0, 2] == 1 and mirrored_policy[0, 0] == 1.0
    assert np.array_equal(CONNECT_FOUR.mirror_policies(np.arange(7)[None]), np.arange(7)[None, ::-1])


def test_search_with_a_uniform_network_finds_wins_and_blocks():
    """With no knowledge in the network, the exact values of terminal leaves still make the search take an
    immediate win and block the opponent's."""
    game = CONNECT_FOUR

    def uniform(boards):
        return np.full((len(boards), game.num_actions), 1 / game.num_actions, np.float32), np.zeros(len(boards))

    win = game.initial_boards(1)
    win[0, 3:, 6], win[0, 3:, 0] = 1, -1  # three each; the player to move completes column 6
    block = game.initial_boards(1)
    block[0, 3:, 6] = -1  # the opponent threatens column 6
    block[0, 4:, 0], block[0, 5, 3] = 1, 1
    visits, _ = mcts.BatchedMCTS(game, uniform).search(np.concatenate([win, block]), 200)
    assert np.argmax(visits[0]) == 6 and np.argmax(visits[1]) == 6


def test_minimax_values_of_tictactoe():
    empty = TIC_TAC_TOE.initial_boards(1)[0]
    assert set(opponents.action_values(TIC_TAC_TOE, empty.tobytes()).values()) == {0}  # a draw from every opening
    threat = empty.copy()
    threat[0, 0], threat[0, 1], threat[1, 1] = 1, 1, -1
    threat[2, 2] = -1  # opponent threatens nothing; the player to move (1) completes the top row at 2
    assert opponents.action_values(TIC_TAC_TOE, threat.tobytes())[2] == 1


def test_numpy_copy_of_the_network_matches_keras():
    """The numpy policy/value network (small leaf batches) answers like the Keras model, batch norm included."""
    from apps.gaming_rl.agents.alphazero import compile_network
    from apps.gaming_rl.models import build_policy_value_network
    from apps.gaming_rl.numpy_policy import NumpyPolicyValueNetwork
    from apps.gaming_rl.tasks.alphazero import random_positions

    boards = random_positions(CONNECT_FOUR, 64, seed=0)
    model = compile_network(build_policy_value_network(6, 7, 7, filters=8, residual_blocks=2, value_hidden_units=8),
                            learning_rate=1e-2)
    model.fit(boards.astype(np.float32), {"policy": np.full((64, 7), 1 / 7, np.float32),
                                          "value": np.ones((64, 1), np.float32)}, epochs=2, verbose=0)
    outputs = model(boards.astype(np.float32), training=False)
    policies, values = NumpyPolicyValueNetwork(model, residual_blocks=2)(boards)
    np.testing.assert_allclose(policies, outputs["policy"].numpy(), atol=1e-5)
    np.testing.assert_allclose(values, outputs["value"].numpy()[:, 0], atol=1e-5)


def test_self_play_tasks_have_default_and_smoke_presets_and_smoke_is_small():
    from apps.gaming_rl import config

    for name in ("connect4-alphazero", "tictactoe-alphazero"):
        spec = config.TASKS[name]
        smoke, default = spec.preset("smoke"), spec.preset("default")
        assert smoke.game == default.game == name.split("-")[0]
        def searches(preset):  # simulations over all self-play moves, per move of a game
            return preset.iterations * preset.games_per_iteration * preset.simulations

        assert searches(smoke) <= 64 and searches(default) > 100 * searches(smoke), name


def test_augmented_policies_follow_their_boards():
    """Under every symmetry the augmentation picks, the policy's mass stays on the cell holding the marker stone."""
    rng = np.random.default_rng(0)
    boards = np.zeros((64, 3, 3), np.int8)
    boards[:, 0, 1] = 1
    policies = np.zeros((64, 9), np.float32)
    policies[:, 1] = 1.0
    moved_boards, moved_policies = TIC_TAC_TOE.augment(boards, policies, rng)
    assert np.array_equal(moved_boards.reshape(64, 9).argmax(axis=1), moved_policies.argmax(axis=1))
    assert len({board.tobytes() for board in moved_boards}) == 4  # the edge cell's 4 images, all reached
    boards = np.zeros((8, 6, 7), np.int8)
    boards[:, 5, 1] = 1
    moved_boards, moved_policies = CONNECT_FOUR.augment(boards, np.eye(7, dtype=np.float32)[[1] * 8], rng)
    assert np.array_equal(moved_boards[:, 5].argmax(axis=1), moved_policies.argmax(axis=1))


def test_play_help_does_not_import_tensorflow():
    import subprocess
    import sys

    from tests.conftest import REPO
    from tests.test_cli import NO_TENSORFLOW

    result = subprocess.run([sys.executable, "-c", NO_TENSORFLOW.format(argv=["play", "--help"])], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    code, heavy, output = result.stdout.strip().split(" ", 2)
    assert (code, heavy) == ("0", "[]"), result.stderr
    assert "--first {human,agent}" in output and "--simulations N" in output
