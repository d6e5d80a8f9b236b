"""DQN and PPO: each an agent object that the shared loop (`apps.gaming_rl.loop`) drives."""
