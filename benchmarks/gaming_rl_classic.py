"""Acrobot-v1: one seed by default, greedy evaluation over 100 episodes.

    .venv/bin/python benchmarks/gaming_rl_classic.py [--tasks acrobot-dqn acrobot-ppo] [--seeds 0]

Target: Acrobot-v1 mean return >= -100. LunarLander-v3 has its own benchmark, `gaming_rl_lunarlander.py`.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gaming_rl_cartpole import main  # noqa: E402

if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--seeds" not in argv:
        argv += ["--seeds", "0"]
    main(argv, default_tasks=("acrobot-dqn",), script=__file__)
