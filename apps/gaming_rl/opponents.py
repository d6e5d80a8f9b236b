"""Opponents the self-play agent is measured against, and the match that plays them.

- `random`: a uniformly random legal move.
- `minimax`: perfect play by exhaustive negamax, memoised per position (tic-tac-toe: 5,478 positions; it picks
  at random among the best moves, so the games vary).
- `mcts`: OpenSpiel's C++ `MCTSBot` with random rollouts (`opponent_simulations` per move), playing on its own
  `pyspiel` game state, which follows every move of the match.

`play_match` plays `num_games` games in lockstep, the agent first in even-numbered games: all boards where the
agent is to move go to `agent_actions` in one call (one batched search).
"""

import functools

import numpy as np

from shared.errors import ConfigError

OPENSPIEL_GAMES = {"connect4": "connect_four", "tictactoe": "tic_tac_toe"}
NAMES = ("random", "minimax", "mcts")


class RandomOpponent:
    def __init__(self, game, seed):
        self.game, self.rng = game, np.random.default_rng(seed)

    def start(self, num_games):
        pass

    def observe(self, number, action):
        pass

    def move(self, number, board):
        return int(self.rng.choice(np.flatnonzero(self.game.legal_mask(board[None])[0])))


class MinimaxOpponent(RandomOpponent):
    def __init__(self, game, seed):
        if game.max_moves > 16:
            raise ConfigError(f"Exhaustive minimax is for small boards. Received: opponent 'minimax' for {game.name} "
                              f"({game.rows}x{game.cols}). Expected tic-tac-toe. Fix: use 'mcts' or 'random'.")
        super().__init__(game, seed)

    def move(self, number, board):
        values = action_values(self.game, board.tobytes())
        best = max(values.values())
        return int(self.rng.choice([action for action, value in values.items() if value == best]))


def action_values(game, board_bytes):
    """{legal action: its exact value for the player to move (1 win, 0 draw, -1 loss)}."""
    return _action_values(game, board_bytes)


@functools.lru_cache(maxsize=None)
def _action_values(game, board_bytes):
    board = np.frombuffer(board_bytes, np.int8).reshape(game.rows, game.cols)
    values = {}
    for action in np.flatnonzero(game.legal_mask(board[None])[0]):
        next_board, done, mover_won = game.play(board[None], [action])
        if done[0]:
            values[int(action)] = 1 if mover_won[0] else 0
        else:
            values[int(action)] = -max(_action_values(game, next_board[0].tobytes()).values())
    return values


class OpenSpielMCTSOpponent:
    def __init__(self, game, seed, simulations, uct_c=2.0):
        import pyspiel

        self.pyspiel, self.seed, self.simulations, self.uct_c = pyspiel, seed, simulations, uct_c
        self.spiel_game = pyspiel.load_game(OPENSPIEL_GAMES[game.name])
        self.states, self.bots = [], []

    def start(self, num_games):
        self.states = [self.spiel_game.new_initial_state() for _ in range(num_games)]
        self.bots = [self.pyspiel.MCTSBot(self.spiel_game, self.pyspiel.RandomRolloutEvaluator(1, self.seed + number),
                                          self.uct_c, self.simulations, 1000, False, self.seed + number, False)
                     for number in range(num_games)]

    def observe(self, number, action):
        self.states[number].apply_action(int(action))

    def move(self, number, board):
        return int(self.bots[number].step(self.states[number]))


def make_opponent(name, game, seed, simulations):
    if name == "random":
        return RandomOpponent(game, seed)
    if name == "minimax":
        return MinimaxOpponent(game, seed)
    if name == "mcts":
        return OpenSpielMCTSOpponent(game, seed, simulations)
    raise ConfigError(f"Unknown opponent. Received: {name!r}. Expected one of: {', '.join(NAMES)}.")


def play_match(game, agent_actions, opponent, num_games):
    """Play `num_games` games, the agent first in the even-numbered ones. Returns
    `{"score", "wins", "draws", "losses"}` from the agent's side (score: wins + draws / 2 per game)."""
    boards = game.initial_boards(num_games)
    agent_to_move = np.arange(num_games) % 2 == 0
    active = np.ones(num_games, bool)
    agent_result = np.zeros(num_games)
    opponent.start(num_games)
    while active.any():
        moving = np.flatnonzero(active & agent_to_move)
        actions = np.zeros(num_games, np.int64)
        if len(moving):
            actions[moving] = agent_actions(boards[moving])
        for number in np.flatnonzero(active & ~agent_to_move):
            actions[number] = opponent.move(number, boards[number])
        playing = np.flatnonzero(active)
        for number in playing:
            opponent.observe(number, actions[number])
        next_boards, done, mover_won = game.play(boards[playing], actions[playing])
        boards[playing] = next_boards
        finished = playing[done]
        agent_result[finished] = np.where(mover_won[done], np.where(agent_to_move[finished], 1.0, -1.0), 0.0)
        active[finished] = False
        agent_to_move[playing] = ~agent_to_move[playing]
    return {"score": float(np.mean((agent_result + 1) / 2)), "wins": int((agent_result > 0).sum()),
            "draws": int((agent_result == 0).sum()), "losses": int((agent_result < 0).sum())}
