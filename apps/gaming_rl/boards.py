"""The rules of the two-player board games, in numpy, for whole batches of boards at once.

A board is int8 `[rows, cols]` seen from the player to move: their stones 1, the opponent's -1, empty 0;
row 0 is the top. After a move the board is negated, so the next player again sees their own stones as 1.
Connect Four (6x7, four in a row, stones fall to the lowest empty cell of a column: an action is a column)
and tic-tac-toe (3x3, three in a row, an action is a cell) are the same code with different `Game` fields.
Win checks look at every line of `connect` cells with shifted slices (no Python loop over cells).
"""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Game:
    name: str
    rows: int
    cols: int
    connect: int
    gravity: bool  # True: an action is a column and the stone falls; False: an action is a cell

    @property
    def num_actions(self):
        return self.cols if self.gravity else self.rows * self.cols

    @property
    def max_moves(self):
        return self.rows * self.cols

    def initial_boards(self, batch_size):
        return np.zeros((batch_size, self.rows, self.cols), np.int8)

    def legal_mask(self, boards):
        """bool `[batch, num_actions]`: a column with an empty top cell, or an empty cell."""
        boards = np.asarray(boards)
        if self.gravity:
            return boards[:, 0, :] == 0
        return (boards == 0).reshape(len(boards), -1)

    def play(self, boards, actions):
        """The boards after the player to move plays `actions` (legal), negated for the next player; and
        `done` [batch] bool and `mover_won` [batch] bool (the game ended with the mover's line)."""
        boards = np.array(boards, np.int8, copy=True)
        index = np.arange(len(boards))
        actions = np.asarray(actions, np.int64)
        if self.gravity:
            empty = boards[index, :, actions] == 0  # [batch, rows]
            rows = self.rows - 1 - np.argmax(empty[:, ::-1], axis=1)
            boards[index, rows, actions] = 1
        else:
            boards[index, actions // self.cols, actions % self.cols] = 1
        mover_won = has_line(boards == 1, self.connect)
        done = mover_won | ~np.any(boards == 0, axis=(1, 2))
        return -boards, done, mover_won

    def mirror_boards(self, boards):
        return np.asarray(boards)[..., ::-1]

    def mirror_policies(self, policies):
        """Policies of mirrored boards: columns reversed (or cells reversed within each row)."""
        policies = np.asarray(policies)
        if self.gravity:
            return policies[..., ::-1]
        return policies.reshape(*policies.shape[:-1], self.rows, self.cols)[..., ::-1].reshape(policies.shape)

    def augment(self, boards, policies, rng):
        """Each (board, policy) pair moved by a random symmetry of the game: a left-right mirror (Connect Four:
        gravity has no other), or one of the square's 8 rotations and reflections (tic-tac-toe)."""
        boards, policies = np.array(boards, copy=True), np.array(policies, copy=True)
        mirror = rng.random(len(boards)) < 0.5
        boards[mirror], policies[mirror] = self.mirror_boards(boards[mirror]), self.mirror_policies(policies[mirror])
        if self.gravity or self.rows != self.cols:
            return boards, policies
        turns = rng.integers(0, 4, len(boards))
        cells = policies.reshape(len(policies), self.rows, self.cols)
        for quarter in range(1, 4):
            chosen = turns == quarter
            boards[chosen] = np.rot90(boards[chosen], quarter, axes=(1, 2))
            cells[chosen] = np.rot90(cells[chosen], quarter, axes=(1, 2))
        return boards, cells.reshape(policies.shape)

    def problems(self, boards):
        """One message per board: '' for a legal position to move from, else what is wrong with it."""
        boards = np.asarray(boards)
        counts_own, counts_opponent = (boards == 1).sum(axis=(1, 2)), (boards == -1).sum(axis=(1, 2))
        difference = counts_opponent - counts_own
        floating = np.zeros(len(boards), bool)
        if self.gravity:
            floating = np.any((boards[:, :-1, :] != 0) & (boards[:, 1:, :] == 0), axis=(1, 2))
        lines = has_line(boards == 1, self.connect) | has_line(boards == -1, self.connect)
        found = []
        for number, board in enumerate(boards):
            if not np.isin(board, (-1, 0, 1)).all():
                found.append("values outside -1, 0, 1")
            elif difference[number] not in (0, 1):
                found.append(f"{counts_own[number]} own stones and {counts_opponent[number]} opponent stones "
                             "(the opponent must have as many stones as the player to move, or one more)")
            elif floating[number]:
                found.append("a stone above an empty cell")
            elif lines[number]:
                found.append(f"{self.connect} in a row: the game is over")
            elif not np.any(board == 0):
                found.append("a full board: the game is over")
            else:
                found.append("")
        return found

    def render(self, board, mover_symbol="X"):
        """A text picture of `board` (the player to move's stones drawn as `mover_symbol`)."""
        other = "O" if mover_symbol == "X" else "X"
        symbols = {1: mover_symbol, -1: other, 0: "."}
        lines = [" ".join(symbols[int(value)] for value in row) for row in board]
        if self.gravity:
            lines.append(" ".join(str(column) for column in range(self.cols)))
        else:
            lines = [line + "    " + " ".join(str(row * self.cols + column) for column in range(self.cols))
                     for row, line in enumerate(lines)]
        return "\n".join(lines)


CONNECT_FOUR = Game("connect4", rows=6, cols=7, connect=4, gravity=True)
TIC_TAC_TOE = Game("tictactoe", rows=3, cols=3, connect=3, gravity=False)
GAMES = {game.name: game for game in (CONNECT_FOUR, TIC_TAC_TOE)}


def has_line(stones, connect):
    """bool [batch]: does `stones` (bool [batch, rows, cols]) hold `connect` in a row in any direction?"""
    stones = np.asarray(stones, bool)
    _batch, rows, cols = stones.shape
    found = np.zeros(len(stones), bool)
    for row_step, col_step in ((0, 1), (1, 0), (1, 1), (1, -1)):
        span_rows, span_cols = (connect - 1) * row_step, (connect - 1) * abs(col_step)
        if span_rows >= rows or span_cols >= cols:
            continue
        window_rows, window_cols = rows - span_rows, cols - span_cols
        line = np.ones((len(stones), window_rows, window_cols), bool)
        for offset in range(connect):
            row = offset * row_step
            col = offset * col_step if col_step >= 0 else span_cols - offset
            line &= stones[:, row:row + window_rows, col:col + window_cols]
        found |= line.any(axis=(1, 2))
    return found
