"""The agents' networks, built from `shared.layers.dense_block`."""

import keras

from shared import layers


def build_q_network(obs_dim, num_actions, hidden_units, activation="relu", dueling=False, name="q_network"):
    """Observations -> one Q-value per action; the dueling head splits value and advantages."""
    # === Layers ===
    observations = keras.Input(shape=(obs_dim,), name="observations")
    x = observations
    for index, units in enumerate(hidden_units):
        x = layers.dense_block(x, units, activation=activation, name=f"{name}_hidden{index}")
    if dueling:
        value = keras.layers.Dense(1, dtype="float32", name=f"{name}_value")(x)
        advantages = keras.layers.Dense(num_actions, dtype="float32", name=f"{name}_advantages")(x)
        centered = advantages - keras.ops.mean(advantages, axis=-1, keepdims=True)
        q_values = keras.layers.Add(dtype="float32", name="q_values")([value, centered])
    else:
        q_values = keras.layers.Dense(num_actions, dtype="float32", name="q_values")(x)
    # === Functional Model ===
    return keras.Model(observations, q_values, name=name)


def build_actor_critic(obs_dim, num_actions, hidden_units, activation="tanh", name="actor_critic"):
    """Observations -> {"logits": [batch, num_actions], "value": [batch, 1]} from separate towers."""
    # === Layers ===
    observations = keras.Input(shape=(obs_dim,), name="observations")
    actor, critic = observations, observations
    for index, units in enumerate(hidden_units):
        actor = layers.dense_block(actor, units, activation=activation, name=f"actor_hidden{index}")
        critic = layers.dense_block(critic, units, activation=activation, name=f"critic_hidden{index}")
    # Small initial logits keep the first policy close to uniform (as in PPO reference implementations).
    logits = keras.layers.Dense(num_actions, kernel_initializer=keras.initializers.Orthogonal(0.01),
                                dtype="float32", name="logits")(actor)
    value = keras.layers.Dense(1, kernel_initializer=keras.initializers.Orthogonal(1.0), dtype="float32",
                               name="value")(critic)
    # === Functional Model ===
    return keras.Model(observations, {"logits": logits, "value": value}, name=name)


def build_policy_value_network(rows, cols, num_actions, filters=32, residual_blocks=3, value_hidden_units=64,
                               l2=1e-4, name="policy_value"):
    """Boards (float [batch, rows, cols]: 1 own stones, -1 the opponent's, 0 empty) -> {"policy": softmax
    over the actions, "value": tanh, the expected outcome for the player to move}.

    AlphaZero's shape at toy scale: the board split into two planes (own, opponent), a 3x3 convolution, a tower
    of residual blocks (conv-BN-ReLU-conv-BN + skip, ReLU), then a policy head (1x1 conv, dense softmax) and a
    value head (1x1 conv, dense ReLU, dense tanh)."""
    # === Layers ===
    regularizer = keras.regularizers.L2(l2) if l2 else None

    def conv_bn(x, units, kernel_size, block_name):
        x = keras.layers.Conv2D(units, kernel_size, padding="same", use_bias=False, kernel_regularizer=regularizer,
                                name=f"{block_name}_conv")(x)
        return keras.layers.BatchNormalization(name=f"{block_name}_bn")(x)

    boards = keras.Input(shape=(rows, cols), name="boards")
    planes = keras.layers.Reshape((rows, cols, 1), name="board_plane")(boards)
    own = keras.layers.ReLU(name="own_stones")(planes)
    opponent = keras.layers.ReLU(name="opponent_stones")(keras.layers.Rescaling(-1.0, name="negate")(planes))
    x = keras.layers.Concatenate(name="stone_planes")([own, opponent])
    x = keras.layers.ReLU(name="stem_relu")(conv_bn(x, filters, 3, "stem"))
    for index in range(residual_blocks):
        skip = x
        x = keras.layers.ReLU(name=f"block{index}_relu1")(conv_bn(x, filters, 3, f"block{index}_a"))
        x = conv_bn(x, filters, 3, f"block{index}_b")
        x = keras.layers.ReLU(name=f"block{index}_relu2")(keras.layers.Add(name=f"block{index}_add")([x, skip]))
    policy = keras.layers.ReLU(name="policy_relu")(conv_bn(x, 2, 1, "policy"))
    policy = keras.layers.Flatten(name="policy_flat")(policy)
    policy = keras.layers.Dense(num_actions, activation="softmax", kernel_regularizer=regularizer, dtype="float32",
                                name="policy")(policy)
    value = keras.layers.ReLU(name="value_relu")(conv_bn(x, 1, 1, "value"))
    value = keras.layers.Flatten(name="value_flat")(value)
    value = keras.layers.Dense(value_hidden_units, activation="relu", kernel_regularizer=regularizer,
                               name="value_hidden")(value)
    value = keras.layers.Dense(1, activation="tanh", dtype="float32", name="value")(value)
    # === Functional Model ===
    return keras.Model(boards, {"policy": policy, "value": value}, name=name)
