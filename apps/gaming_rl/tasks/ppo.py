"""`PPOTask`: an actor-critic trained with PPO on a Gymnasium game; serves the greedy action, the policy's
probabilities and the state value."""

import tensorflow as tf

from apps.gaming_rl.agents.ppo import PPOAgent
from apps.gaming_rl.models import build_actor_critic
from apps.gaming_rl.tasks.base import RLTask
from shared.app import Endpoint


class PPOTask(RLTask):
    algorithm = "ppo"
    agent_class = PPOAgent

    def build_model(self, config, data):
        return build_actor_critic(data.info["obs_dim"], data.info["num_actions"], config.hidden_units,
                                  config.activation)

    def endpoints(self, model, config, info):
        def serve(observations):
            outputs = model(observations, training=False)
            probabilities = tf.nn.softmax(outputs["logits"])
            return {"actions": tf.argmax(probabilities, axis=-1, output_type=tf.int32),
                    "action_probabilities": probabilities, "state_values": outputs["value"][:, 0]}

        return {"serving_default": Endpoint(serve, [tf.TensorSpec([None, info["obs_dim"]], tf.float32,
                                                                  name="observations")])}
