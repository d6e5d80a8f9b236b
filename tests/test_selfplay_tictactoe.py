"""A tic-tac-toe AlphaZero agent trained for about a minute never loses to exhaustive minimax: every game in
which minimax plays any of its optimal moves, with the agent first and second (a fixed 128-simulation search)."""

import dataclasses

import keras
import numpy as np

from apps.gaming_rl import opponents, selfplay
from apps.gaming_rl.agents.alphazero import AlphaZeroAgent, search_player
from apps.gaming_rl.boards import TIC_TAC_TOE
from apps.gaming_rl.config import tictactoe_alphazero
from apps.gaming_rl.tasks.alphazero import AlphaZeroTask


def all_games_against_minimax(game, agent_actions, agent_first):
    """Results (1 win, 0 draw, -1 loss, for the agent) of every game where minimax plays each of its best moves
    in turn and the agent answers with its deterministic search; positions are merged when they repeat."""
    frontier, agent_to_move, results = {game.initial_boards(1)[0].tobytes()}, agent_first, []
    while frontier:
        boards = np.stack([np.frombuffer(key, np.int8).reshape(game.rows, game.cols) for key in frontier])
        if agent_to_move:
            moves = [[int(action)] for action in agent_actions(boards)]
        else:
            moves = []
            for board in boards:
                values = opponents.action_values(game, board.tobytes())
                moves.append([action for action, value in values.items() if value == max(values.values())])
        frontier = set()
        for board, actions in zip(boards, moves):
            for action in actions:
                next_board, done, mover_won = game.play(board[None], [action])
                if done[0]:
                    results.append((1 if agent_to_move else -1) if mover_won[0] else 0)
                else:
                    frontier.add(next_board[0].tobytes())
        agent_to_move = not agent_to_move
    return results


def test_tictactoe_agent_never_loses_to_minimax(tmp_path):
    config = dataclasses.replace(tictactoe_alphazero(), iterations=9, eval_interval=9, eval_games=4, seed=3)
    keras.utils.set_random_seed(config.seed)  # the network's initial weights: the same run every time
    task = AlphaZeroTask()
    data = task.build_data(config, task.check_inputs(config, None))
    model = task.build_model(config, data)
    agent = AlphaZeroAgent(model, config)
    selfplay.train(agent, model, config, task.callbacks(config), tmp_path)

    player = search_player(TIC_TAC_TOE, agent.evaluate, simulations=128, c_puct=config.c_puct)
    for agent_first in (True, False):
        results = all_games_against_minimax(TIC_TAC_TOE, player, agent_first)
        assert len(results) >= 2
        assert min(results) == 0, (f"lost {results.count(-1)} of {len(results)} games as "
                                   f"{'first' if agent_first else 'second'} player")
