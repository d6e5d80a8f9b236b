"""`DQNTask`: a deep Q-network (Double DQN, optionally dueling) on a Gymnasium game; serves the greedy action
and every action's value."""

import tensorflow as tf

from apps.gaming_rl.agents.dqn import DQNAgent
from apps.gaming_rl.models import build_q_network
from apps.gaming_rl.tasks.base import RLTask
from shared.app import Endpoint


class DQNTask(RLTask):
    algorithm = "dqn"
    agent_class = DQNAgent

    def build_model(self, config, data):
        return build_q_network(data.info["obs_dim"], data.info["num_actions"], config.hidden_units,
                               config.activation, dueling=config.dueling)

    def endpoints(self, model, config, info):
        def serve(observations):
            action_values = model(observations, training=False)
            return {"actions": tf.argmax(action_values, axis=-1, output_type=tf.int32),
                    "action_values": action_values}

        return {"serving_default": Endpoint(serve, [tf.TensorSpec([None, info["obs_dim"]], tf.float32,
                                                                  name="observations")])}
