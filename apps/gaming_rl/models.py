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
