"""The serving graph's refusal of impossible boards: `tf.debugging.Assert`s whose messages name the first bad
board and what is wrong with it (TensorFlow's InvalidArgumentError; `dlsuite serve` answers 400 with the text).

A board to move from holds only -1, 0 and 1; the opponent has as many stones as the player to move or one more;
no stone floats above an empty cell (Connect Four); nobody has a line yet and the board is not full.
`boards.Game.problems` is the same rules in numpy.
"""

import numpy as np
import tensorflow as tf

EXPECTED = ("Expected int8 boards [batch, {rows}, {cols}] of a game in progress, seen from the player to move: "
            "their stones 1, the opponent's -1, empty 0")


def board_checks(game, boards):
    """The Assert ops for int8 `boards` `[batch, rows, cols]`; run them as control dependencies."""
    expected = EXPECTED.format(rows=game.rows, cols=game.cols)
    values = tf.cast(boards, tf.int32)
    own = tf.reduce_sum(tf.cast(values == 1, tf.int32), axis=[1, 2])
    opponent = tf.reduce_sum(tf.cast(values == -1, tf.int32), axis=[1, 2])
    rules = [
        (tf.reduce_any(tf.abs(values) > 1, axis=[1, 2]), "has values outside -1, 0, 1", expected + "."),
        ((opponent - own < 0) | (opponent - own > 1), "has an impossible number of stones",
         expected + ": the opponent has as many stones as the player to move, or one more."),
    ]
    if game.gravity:
        floating = tf.reduce_any((values[:, :-1, :] != 0) & (values[:, 1:, :] == 0), axis=[1, 2])
        rules.append((floating, "has a stone above an empty cell", expected + ": stones rest on the bottom row "
                      "or on other stones (row 0 is the top)."))
    lines = _has_line(values == 1, game.connect) | _has_line(values == -1, game.connect)
    rules.append((lines, f"has {game.connect} in a row: the game is over", expected + "."))
    rules.append((tf.reduce_all(values != 0, axis=[1, 2]), "is full: the game is over", expected + "."))
    checks = []
    for bad, problem, wanted in rules:
        first = tf.argmax(tf.concat([tf.cast(bad, tf.int32), [1]], axis=0), output_type=tf.int32)
        message = tf.strings.format("Invalid board: boards[{}] " + problem + " (own stones {}, opponent stones "
                                    "{}). " + wanted + " Fix: send positions reachable by legal play.",
                                    (first, _at(own, first), _at(opponent, first)))
        checks.append(tf.debugging.Assert(tf.logical_not(tf.reduce_any(bad)), [message]))
    return checks


def _at(counts, index):
    return tf.gather(tf.concat([counts, [0]], axis=0), index)


def _has_line(stones, connect):
    """bool [batch]: `connect` in a row in any direction, by 'valid' convolutions with line-shaped kernels."""
    planes = tf.cast(stones, tf.float32)[..., None]
    found = tf.zeros(tf.shape(stones)[:1], tf.bool)
    rows, cols = stones.shape[1], stones.shape[2]
    kernels = [np.ones((1, connect)), np.ones((connect, 1)), np.eye(connect), np.fliplr(np.eye(connect))]
    for kernel in kernels:
        if kernel.shape[0] > rows or kernel.shape[1] > cols:
            continue
        sums = tf.nn.conv2d(planes, tf.constant(kernel[..., None, None], tf.float32), strides=1, padding="VALID")
        found |= tf.reduce_any(sums >= connect - 0.5, axis=[1, 2, 3])
    return found
