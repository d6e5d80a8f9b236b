"""`dlsuite play`: a person plays a board game in the terminal against a self-play export.

    dlsuite play --model-dir exports/gaming_rl-connect4-alphazero [--first human|agent] [--simulations N]
    dlsuite play --run-id RUN_ID

The agent answers with a search of `--simulations` (default: the evaluation budget of the run's config; 0 plays
the network's own choice) through the reloaded SavedModel, exactly what `dlsuite serve` would serve. The
person types a column (Connect Four) or a cell number (tic-tac-toe); an illegal or malformed move is refused
with the reason and asked again; `q` or end of input quits.
"""

import sys

from apps.gaming_rl.boards import GAMES
from shared.errors import UsageError

PLAYABLE_TASKS = ("connect4-alphazero", "tictactoe-alphazero")


def check_simulations(text):
    """argparse type of --simulations: an integer >= 0."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"Invalid --simulations. Received: {text!r}. Expected an integer >= 0 "
                                         "(0: the network's move without search).")
    return value


def export_of(model_dir=None, run_id=None, tracking_uri=None):
    """`(version dir, metadata)` of the export to play against, checked to be a self-play task's."""
    from pathlib import Path

    from shared import export as export_lib

    if bool(model_dir) == bool(run_id):
        raise UsageError(f"Give one model to play against. Received: --model-dir {model_dir} and --run-id {run_id}. "
                         "Expected exactly one of them, e.g. --model-dir exports/gaming_rl-connect4-alphazero.")
    if run_id:
        from pipelines.serve import resolve_model_dir

        model_dir = resolve_model_dir(run_id=run_id, tracking_uri=tracking_uri)
    elif not Path(model_dir).is_dir():
        raise UsageError(f"No such export folder. Received: --model-dir {model_dir}. Expected a folder written by "
                         "`dlsuite train gaming_rl --task connect4-alphazero` (or one of its versions).")
    version_dir = export_lib.resolve_version_dir(model_dir)
    metadata = export_lib.read_metadata(version_dir)
    if metadata.get("app") != "gaming_rl" or metadata.get("task") not in PLAYABLE_TASKS:
        raise UsageError(f"This export is not a board-game player. Received: {version_dir} (app "
                         f"{metadata.get('app')!r}, task {metadata.get('task')!r}). Expected an export of "
                         f"gaming_rl's {' or '.join(PLAYABLE_TASKS)}.")
    return version_dir, metadata


def play(model_dir=None, run_id=None, first="human", simulations=None, tracking_uri=None, read=input,
         write=print):
    """Play one game; returns "human", "agent" or "draw"."""
    version_dir, metadata = export_of(model_dir, run_id, tracking_uri)
    config = metadata.get("config", {})
    game = GAMES[config.get("game", "connect4")]
    simulations = config.get("eval_simulations", 100) if simulations is None else simulations
    import numpy as np

    from apps.gaming_rl.agents.alphazero import search_player, serving_evaluator
    from shared import export as export_lib

    evaluate = serving_evaluator(export_lib.load_serving(version_dir))
    if simulations:
        agent = search_player(game, evaluate, simulations, config.get("c_puct", 1.5))
    else:
        def agent(boards):
            return np.argmax(evaluate(boards)[0], axis=1)

    where = "a column 0-6" if game.gravity else f"a cell 0-{game.num_actions - 1}"
    write(f"{game.name}: you are {'X' if first == 'human' else 'O'} and play {where}; the agent searches "
          f"{simulations} simulations per move ({version_dir}). X moves first; q quits.")
    board = game.initial_boards(1)[0]
    human_to_move, first_to_move = first == "human", True
    while True:
        write(game.render(board if first_to_move else -board))
        if human_to_move:
            action = _ask(game, board, read, write, where)
            if action is None:
                write("quit")
                return None
        else:
            action = int(agent(board[None])[0])
            write(f"agent plays {action}")
        next_boards, done, mover_won = game.play(board[None], [action])
        board = next_boards[0]
        if done[0]:
            write(game.render(-board if first_to_move else board))
            winner = ("human" if human_to_move else "agent") if mover_won[0] else "draw"
            write({"human": "You win.", "agent": "The agent wins.", "draw": "Draw."}[winner])
            return winner
        human_to_move, first_to_move = not human_to_move, not first_to_move


def _ask(game, board, read, write, where):
    """The person's move, asked again until legal; None to quit."""
    legal = game.legal_mask(board[None])[0]
    while True:
        try:
            text = read("your move: ").strip()
        except EOFError:
            return None
        if text.lower() in ("q", "quit", "exit"):
            return None
        if not text.isdigit() or int(text) >= game.num_actions:
            write(f"Illegal move. Received: {text!r}. Expected {where}. Try again.")
            continue
        if not legal[int(text)]:
            taken = "that column is full" if game.gravity else "that cell is taken"
            write(f"Illegal move. Received: {text} ({taken}). Expected one of: "
                  f"{', '.join(str(action) for action in range(game.num_actions) if legal[action])}. Try again.")
            continue
        return int(text)


def main_loop(args):
    """The CLI's entry: play one game on stdin/stdout; exit code 0."""
    play(model_dir=args.model_dir, run_id=args.run_id, first=args.first, simulations=args.simulations,
         tracking_uri=args.tracking_uri, read=input, write=lambda line: print(line, flush=True))
    sys.stdout.flush()
    return 0
