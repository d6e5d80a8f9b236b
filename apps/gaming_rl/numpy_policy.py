"""The Q-network of `models.build_q_network` and the actor-critic of `models.build_actor_critic` evaluated in
numpy, for acting one step at a time.

A compiled Keras call costs about 0.5 ms per single observation on CPU (several ms when
the cores are busy: TensorFlow's thread pools wait for them); this costs about 20 us. The
weights are copied after every training round (`refresh`), and the test suite checks the
outputs against the Keras network.
"""

import numpy as np

ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0.0),
    "tanh": np.tanh,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "linear": lambda x: x,
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.1 * x),
    "swish": lambda x: x / (1.0 + np.exp(-x)),
}


class _NumpyNetwork:
    """What both copies share: the activation, the weights read by layer name, the hidden layers in numpy."""

    def __init__(self, model, num_hidden, activation):
        if activation not in ACTIVATIONS:
            raise ValueError(f"No numpy version of the activation. Received: activation={activation!r}. "
                             f"Expected one of: {', '.join(ACTIVATIONS)}.")
        self.model, self.num_hidden = model, num_hidden
        self.activation = ACTIVATIONS[activation]
        self.refresh()

    def refresh(self):
        raise NotImplementedError

    def weights(self, name):
        layer = self.model.get_layer(name)
        return layer.kernel.numpy(), layer.bias.numpy()

    def hidden_layers(self, prefix):
        return [self.weights(f"{prefix}_hidden{index}_dense") for index in range(self.num_hidden)]

    def features(self, observations, hidden):
        x = np.asarray(observations, np.float32)
        for kernel, bias in hidden:
            x = self.activation(x @ kernel + bias)
        return x


class NumpyQNetwork(_NumpyNetwork):
    def __init__(self, model, num_hidden, activation, dueling):
        self.dueling = dueling
        super().__init__(model, num_hidden, activation)

    def refresh(self):
        prefix = self.model.name
        self.hidden = self.hidden_layers(prefix)
        if self.dueling:
            self.value_head = self.weights(f"{prefix}_value")
            self.advantage_head = self.weights(f"{prefix}_advantages")
        else:
            self.head = self.weights("q_values")

    def __call__(self, observations):
        x = self.features(observations, self.hidden)
        if not self.dueling:
            return x @ self.head[0] + self.head[1]
        value = x @ self.value_head[0] + self.value_head[1]
        advantages = x @ self.advantage_head[0] + self.advantage_head[1]
        return value + advantages - advantages.mean(axis=-1, keepdims=True)


class NumpyActorCritic(_NumpyNetwork):
    """`{"logits", "value"}` of the actor-critic in numpy: PPO's per-step policy call on all its environments."""

    def refresh(self):
        self.towers = {tower: self.hidden_layers(tower) for tower in ("actor", "critic")}
        self.heads = {"actor": self.weights("logits"), "critic": self.weights("value")}

    def __call__(self, observations):
        """numpy [batch, obs_dim] -> (logits [batch, num_actions], values [batch])."""
        outputs = {}
        for tower, hidden in self.towers.items():
            outputs[tower] = self.features(observations, hidden) @ self.heads[tower][0] + self.heads[tower][1]
        return outputs["actor"], outputs["critic"][:, 0]
