"""Monte Carlo tree search with PUCT (AlphaZero's), run on many boards in lockstep.

Every board gets its own tree, but the trees live in shared arrays (`[boards, nodes, actions]`), so one
simulation step descends all trees together with a few numpy operations per tree level, and all their new
leaves are evaluated by the network in ONE batched call (`evaluate(boards) -> (priors, values)`). That call is
where the time goes; `simulations_per_second` counts the simulations of all boards.

Values are from the point of view of the player to move at a node; an edge's `W` is summed from the point of
view of the player choosing it, so a leaf's value is added with alternating signs along its path. Unvisited
edges count as Q = 0 (a draw). Terminal leaves take their exact value (-1: the player to move has lost) instead
of the network's.
"""

import numpy as np


class BatchedMCTS:
    def __init__(self, game, evaluate, c_puct=1.5, dirichlet_alpha=0.3, dirichlet_fraction=0.25):
        self.game, self.evaluate = game, evaluate
        self.c_puct, self.dirichlet_alpha, self.dirichlet_fraction = c_puct, dirichlet_alpha, dirichlet_fraction
        self.simulations_done = 0

    def search(self, boards, simulations, rng=None, add_noise=False):
        """Visit counts `[batch, num_actions]` at the roots after `simulations` simulations each, and the roots'
        mean values. `add_noise` mixes Dirichlet noise into the root priors (self-play), drawn from `rng`."""
        game = self.game
        boards = np.asarray(boards, np.int8)
        batch, num_actions, max_nodes = len(boards), game.num_actions, simulations + 1
        children = np.full((batch, max_nodes, num_actions), -1, np.int32)
        visits = np.zeros((batch, max_nodes, num_actions), np.float32)
        totals = np.zeros((batch, max_nodes, num_actions), np.float32)
        priors = np.zeros((batch, max_nodes, num_actions), np.float32)
        legal = np.zeros((batch, max_nodes, num_actions), bool)
        node_boards = np.zeros((batch, max_nodes, game.rows, game.cols), np.int8)
        terminal = np.zeros((batch, max_nodes), bool)
        terminal_values = np.zeros((batch, max_nodes), np.float32)
        counts = np.ones(batch, np.int64)
        node_boards[:, 0] = boards
        legal[:, 0] = game.legal_mask(boards)
        root_priors, _ = self.evaluate(boards)
        priors[:, 0] = _masked(root_priors, legal[:, 0])
        if add_noise:
            noise = rng.gamma(self.dirichlet_alpha, 1.0, (batch, num_actions)) * legal[:, 0]
            noise /= np.maximum(noise.sum(axis=1, keepdims=True), 1e-12)
            priors[:, 0] = (1 - self.dirichlet_fraction) * priors[:, 0] + self.dirichlet_fraction * noise
        all_boards = np.arange(batch)
        max_depth = game.max_moves + 1
        for _ in range(simulations):
            node = np.zeros(batch, np.int64)
            leaf = np.zeros(batch, np.int64)
            depth = np.zeros(batch, np.int64)
            path_nodes = np.zeros((batch, max_depth), np.int64)
            path_actions = np.zeros((batch, max_depth), np.int64)
            active = np.ones(batch, bool)
            while active.any():
                index, at = all_boards[active], node[active]
                edge_visits = visits[index, at]
                parent_visits = np.sqrt(np.maximum(edge_visits.sum(axis=1, keepdims=True), 1.0))
                values = np.where(edge_visits > 0, totals[index, at] / np.maximum(edge_visits, 1.0), 0.0)
                scores = values + self.c_puct * priors[index, at] * parent_visits / (1.0 + edge_visits)
                actions = np.argmax(np.where(legal[index, at], scores, -np.inf), axis=1)
                path_nodes[index, depth[index]], path_actions[index, depth[index]] = at, actions
                depth[index] += 1
                child = children[index, at, actions]
                new = child < 0
                if new.any():  # expand: one new node per tree, its board played from its parent's
                    grown, parents, moves = index[new], at[new], actions[new]
                    created = counts[grown]
                    counts[grown] += 1
                    children[grown, parents, moves] = created
                    next_boards, done, mover_won = game.play(node_boards[grown, parents], moves)
                    node_boards[grown, created] = next_boards
                    terminal[grown, created] = done
                    terminal_values[grown, created] = np.where(mover_won, -1.0, 0.0)
                    leaf[grown] = created
                    active[grown] = False
                descended, reached = index[~new], child[~new]
                node[descended] = reached
                ended = terminal[descended, reached]
                leaf[descended[ended]] = reached[ended]
                active[descended[ended]] = False
            leaf_values = terminal_values[all_boards, leaf].copy()
            open_leaves = ~terminal[all_boards, leaf]
            if open_leaves.any():
                index, at = all_boards[open_leaves], leaf[open_leaves]
                leaf_boards = node_boards[index, at]
                leaf_priors, values = self.evaluate(leaf_boards)
                legal[index, at] = game.legal_mask(leaf_boards)
                priors[index, at] = _masked(leaf_priors, legal[index, at])
                leaf_values[index] = values
            on_path = np.arange(max_depth)[None, :] < depth[:, None]
            rows, levels = np.nonzero(on_path)
            signs = np.where((depth[rows] - levels) % 2 == 1, -1.0, 1.0)  # the chooser is the leaf's opponent
            visits[rows, path_nodes[rows, levels], path_actions[rows, levels]] += 1.0
            totals[rows, path_nodes[rows, levels], path_actions[rows, levels]] += signs * leaf_values[rows]
        self.simulations_done += batch * simulations
        root_visits = visits[:, 0]
        root_values = totals[:, 0].sum(axis=1) / np.maximum(root_visits.sum(axis=1), 1.0)
        return root_visits, root_values


def _masked(policies, legal):
    """Policies restricted to legal actions and renormalised (uniform over them if the network gave them 0)."""
    policies = np.where(legal, np.asarray(policies, np.float32), 0.0)
    sums = policies.sum(axis=1, keepdims=True)
    uniform = legal / np.maximum(legal.sum(axis=1, keepdims=True), 1)
    return np.where(sums > 1e-12, policies / np.maximum(sums, 1e-12), uniform).astype(np.float32)


def choose_actions(visit_counts, rng, sample):
    """Per board: an action sampled in proportion to its visits where `sample` (the opening moves of
    self-play, temperature 1), else the most visited one."""
    visit_counts = np.asarray(visit_counts, np.float64)
    greedy = np.argmax(visit_counts, axis=1)
    probabilities = visit_counts / np.maximum(visit_counts.sum(axis=1, keepdims=True), 1e-12)
    draws = (probabilities.cumsum(axis=1) > rng.random((len(visit_counts), 1))).argmax(axis=1)
    return np.where(np.asarray(sample, bool), draws, greedy)
