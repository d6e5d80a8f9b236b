"""The Q-network of `models.build_q_network`, the actor-critic of `models.build_actor_critic` and the
policy/value network of `models.build_policy_value_network` evaluated in numpy, for acting one step at a time
(self-play: MCTS leaf batches of fewer than 16 boards).

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


class NumpyPolicyValueNetwork:
    """`models.build_policy_value_network` in numpy, batch normalization folded into the convolutions (3x3
    convolutions as one matrix product over sliding windows). `refresh()` copies the weights after training."""

    def __init__(self, model, residual_blocks):
        self.model, self.residual_blocks = model, residual_blocks
        self.refresh()

    def refresh(self):
        def conv_bn(name):
            kernel = self.model.get_layer(f"{name}_conv").kernel.numpy()
            gamma, beta, mean, variance = (weight.numpy() for weight in self.model.get_layer(f"{name}_bn").weights)
            scale = gamma / np.sqrt(variance + self.model.get_layer(f"{name}_bn").epsilon)
            size, _, channels, filters = kernel.shape
            return (kernel * scale).reshape(size * size * channels, filters).astype(np.float32), \
                (beta - mean * scale).astype(np.float32), size

        def dense(name):
            layer = self.model.get_layer(name)
            return layer.kernel.numpy(), layer.bias.numpy()

        self.stem = conv_bn("stem")
        self.blocks = [(conv_bn(f"block{index}_a"), conv_bn(f"block{index}_b"))
                       for index in range(self.residual_blocks)]
        self.policy_conv, self.value_conv = conv_bn("policy"), conv_bn("value")
        self.policy_dense, self.value_hidden, self.value_dense = (dense(name) for name in ("policy", "value_hidden",
                                                                                            "value"))

    def __call__(self, boards):
        """int8 or float boards [batch, rows, cols] -> (policies [batch, actions], values [batch])."""
        boards = np.asarray(boards, np.float32)
        x = np.stack([np.maximum(boards, 0.0), np.maximum(-boards, 0.0)], axis=-1)
        x = np.maximum(_conv(x, *self.stem), 0.0)
        for first, second in self.blocks:
            x = np.maximum(_conv(np.maximum(_conv(x, *first), 0.0), *second) + x, 0.0)
        policy = np.maximum(_conv(x, *self.policy_conv), 0.0).reshape(len(boards), -1)
        logits = policy @ self.policy_dense[0] + self.policy_dense[1]
        logits -= logits.max(axis=1, keepdims=True)
        policies = np.exp(logits)
        policies /= policies.sum(axis=1, keepdims=True)
        value = np.maximum(_conv(x, *self.value_conv), 0.0).reshape(len(boards), -1)
        value = np.maximum(value @ self.value_hidden[0] + self.value_hidden[1], 0.0)
        return policies, np.tanh(value @ self.value_dense[0] + self.value_dense[1])[:, 0]


def _conv(x, kernel, bias, size):
    """A 'same' convolution of x [batch, rows, cols, channels] with a (size*size*channels, filters) kernel."""
    batch, rows, cols, channels = x.shape
    if size == 1:
        return (x.reshape(-1, channels) @ kernel + bias).reshape(batch, rows, cols, -1)
    pad = size // 2
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (size, size), axis=(1, 2))  # [b, r, c, ch, s, s]
    columns = windows.transpose(0, 1, 2, 4, 5, 3).reshape(batch * rows * cols, size * size * channels)
    return (columns @ kernel + bias).reshape(batch, rows, cols, -1)
