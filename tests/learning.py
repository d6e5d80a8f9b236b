"""Did the exported model learn? Scores computed by the tests, independently of the code under test.

Each function reads the raw test data with the tests' own readers (`tests.tiny_data`: gzip + numpy
for IDX, `wave` for WAV, file names for labels, gymnasium for games), calls the exported SavedModel
through `tf.saved_model.load` on raw inputs, and returns `(score, chance)`: the model's score and
what guessing gets on the same data.
"""

import re
from pathlib import Path

import numpy as np

from tests.tiny_data import IDX_FILES, read_idx, read_wav

FSDD_NAME = re.compile(r"^(\d)_([a-z]+)_(\d+)\.wav$")


def _signature(export_dir, name="serving_default"):
    import tensorflow as tf

    loaded = tf.saved_model.load(str(export_dir))
    signature = loaded.signatures[name]
    signature.loaded = loaded  # keep the SavedModel alive with its signature
    return signature


def _call(signature, **inputs):
    import tensorflow as tf

    return {key: value.numpy() for key, value in signature(**{key: tf.constant(value)
                                                              for key, value in inputs.items()}).items()}


def vision_accuracy(export_dir, idx_dir, count=2000):
    """Accuracy on the first `count` test images of the IDX files; chance is the largest class share."""
    images_name, labels_name = IDX_FILES["test"]
    images = read_idx(_find(idx_dir, images_name))[:count]
    labels = read_idx(_find(idx_dir, labels_name))[:count].astype(np.int64)
    signature = _signature(export_dir)
    predicted = np.concatenate([_call(signature, images=images[start:start + 500])["probabilities"].argmax(-1)
                                for start in range(0, len(images), 500)])
    return float((predicted == labels).mean()), float(np.bincount(labels).max() / len(labels))


def _find(folder, gz_name):
    for name in (gz_name, gz_name[: -len(".gz")]):
        if (Path(folder) / name).is_file():
            return Path(folder) / name
    raise FileNotFoundError(f"{gz_name} (or without .gz) not in {folder}")


def fsdd_test_files(fsdd_dir):
    """FSDD's test set by its own rule: takes 0-4 of every digit and speaker; labels from the file names."""
    paths = sorted(path for path in (Path(fsdd_dir) / "recordings").glob("*.wav")
                   if int(FSDD_NAME.match(path.name).group(3)) < 5)
    return paths, np.array([int(FSDD_NAME.match(path.name).group(1)) for path in paths])


def digits_accuracy(export_dir, fsdd_dir):
    """Accuracy on FSDD's test clips, sent as WAV file bytes to `serving_wav`; chance is 0.1 (balanced)."""
    paths, labels = fsdd_test_files(fsdd_dir)
    signature = _signature(export_dir, "serving_wav")
    predicted = np.concatenate([
        _call(signature, wav_bytes=np.array([path.read_bytes() for path in paths[start:start + 64]], object))
        ["probabilities"].argmax(-1) for start in range(0, len(paths), 64)])
    return float((predicted == labels).mean()), float(np.bincount(labels).max() / len(labels))


def edit_distance(reference, hypothesis):
    row = list(range(len(hypothesis) + 1))
    for i, expected in enumerate(reference, 1):
        previous, row[0] = row[0], i
        for j, got in enumerate(hypothesis, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (expected != got))
    return row[-1]


def digit_strings_accuracy(export_dir, fsdd_dir, count=100, max_digits=3, seed=0):
    """Digit accuracy (1 - edit distance / digits) on utterances the test joins from FSDD test clips
    (1-`max_digits` clips, 0.1 s of silence between them). Chance: a random string of the right length."""
    paths, labels = fsdd_test_files(fsdd_dir)
    rng = np.random.default_rng(seed)
    gap = np.zeros(800, np.float32)
    waveforms, references = [], []
    for _ in range(count):
        picks = rng.choice(len(paths), size=rng.integers(1, max_digits + 1), replace=False)
        clips = [read_wav(paths[pick])[0] for pick in picks]
        waveforms.append(np.concatenate([part for clip in clips for part in (clip, gap)][:-1]))
        references.append("".join(str(labels[pick]) for pick in picks))
    batch = np.zeros((count, max(len(waveform) for waveform in waveforms)), np.float32)
    for row, waveform in enumerate(waveforms):
        batch[row, : len(waveform)] = waveform
    signature = _signature(export_dir)
    hypotheses = np.concatenate([_call(signature, waveforms=batch[start:start + 25])["digits"]
                                 for start in range(0, count, 25)])
    total = sum(len(reference) for reference in references)

    def accuracy(guesses):
        return 1.0 - sum(edit_distance(r, g) for r, g in zip(references, guesses)) / total

    guesses = ["".join(str(digit) for digit in rng.integers(0, 10, len(reference))) for reference in references]
    return accuracy([hypothesis.decode() for hypothesis in hypotheses]), accuracy(guesses)


def rl_returns(export_dir, env_id, episodes=20, max_episode_steps=None, seed=12345):
    """Mean return of the exported greedy policy, and of a uniformly random policy, on the same seeds."""
    import gymnasium as gym

    signature = _signature(export_dir)

    def play(choose):
        returns = []
        for episode in range(episodes):
            env = gym.make(env_id, max_episode_steps=max_episode_steps)
            env.action_space.seed(seed + episode)
            observation, _ = env.reset(seed=seed + episode)
            total, done = 0.0, False
            while not done:
                observation, reward, terminated, truncated, _ = env.step(choose(env, observation))
                total, done = total + reward, terminated or truncated
            env.close()
            returns.append(total)
        return float(np.mean(returns))

    def observe(env, observation):
        if isinstance(env.observation_space, gym.spaces.Discrete):  # served as one-hot vectors
            return np.eye(env.observation_space.n, dtype=np.float32)[int(observation)]
        return np.asarray(observation, np.float32)

    def greedy(env, observation):
        return int(_call(signature, observations=observe(env, observation)[None])["actions"][0])

    return play(greedy), play(lambda env, _observation: int(env.action_space.sample()))
