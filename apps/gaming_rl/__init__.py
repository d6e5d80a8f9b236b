"""Gaming RL: DQN and PPO agents in Keras on Gymnasium games."""
