"""Every task of every app through `tests.harness.run_task_test`, on tiny data the tests write.

The data (`tests.tiny_data`) is in each dataset's official layout: IDX files for vision, `recordings/
digit_speaker_index.wav` (8 kHz, 16-bit mono) with SHA256SUMS for speech; RL plays its environment.
A task added to `pipelines.catalog` without an entry in CASES fails here until it gets one.
"""

import dataclasses
import gzip

import numpy as np
import pytest

from pipelines import catalog
from shared.errors import ConfigError, DataError
from tests.harness import BadInput, TaskCase, run_task_test
from tests.tiny_data import make_fsdd_folder, make_idx_folder, write_idx, write_sums, write_wav
from tests.nlp.cases import TEXT_CLASSIFICATION, TRANSFER
from tests.nlp.generation_cases import LANGUAGE_MODEL, TRANSLATION
from tests.recommender.cases import rating_case, retrieval_case
from tests.fraud.cases import MODELS as FRAUD_MODELS, detection_case
from tests.vision.photo_cases import DETECTION as PHOTO_DETECTION
from tests.vision.photo_cases import SEGMENTATION as PHOTO_SEGMENTATION
from tests.tiny_data import make_movielens_folder
from tests.vision.generative_cases import AUTOENCODER, VAE
from tests.vision.generative_cases import DIFFUSION, GAN

# === Vision: a few IDX files ===


def _replace(name, array):
    def break_data(folder):
        write_idx(folder / name, array)
        return folder

    return break_data


def _truncate(name):
    def break_data(folder):
        raw = gzip.decompress((folder / name).read_bytes())
        (folder / name).write_bytes(gzip.compress(raw[:-100]))
        return folder

    return break_data


def _not_idx(name):
    def break_data(folder):
        (folder / name).write_bytes(gzip.compress(b"%PDF-1.4 not an IDX file"))
        return folder

    return break_data


VISION = TaskCase(
    make_data=make_idx_folder,
    overrides=("batch_size=32",),
    metrics=("test_accuracy", "test_loss", "test_macro_f1"),
    bad_inputs=(
        BadInput(DataError, r"Data directory not found\. Received: --data-dir .*missing",
                 break_data=lambda folder: folder / "missing"),
        BadInput(DataError, r"No fashion_mnist data found\. Received: --data-dir .*empty .*Expected the four "
                            r"fashion_mnist IDX files",
                 break_data=lambda folder: (folder / "empty").mkdir() or folder / "empty"),
        BadInput(DataError, r"Truncated or padded IDX file .*train-images-idx3-ubyte\.gz\. Received: ",
                 break_data=_truncate("train-images-idx3-ubyte.gz")),
        BadInput(DataError, r"Not an IDX file of uint8 with 1 dimensions: .*t10k-labels-idx1-ubyte\.gz\. Received: ",
                 break_data=_not_idx("t10k-labels-idx1-ubyte.gz")),
        BadInput(DataError, r"The test images and labels disagree in .*Received: 32 images, 5 labels\. Expected",
                 break_data=_replace("t10k-labels-idx1-ubyte.gz", np.zeros(5))),
        BadInput(DataError, r"Invalid train labels in .*Received: label 12\. Expected classes 0-9\. Fix: ",
                 break_data=_replace("train-labels-idx1-ubyte.gz", np.full(64, 12))),
        BadInput(ConfigError, r"Received: dataset='cifar10'\. Expected one of: fashion_mnist, mnist",
                 overrides=("dataset=cifar10",)),
    ),
)

# === Speech: a few FSDD-named WAV files ===

def _then_resum(change):
    def break_data(folder):
        change(folder / "recordings")
        write_sums(folder)
        return folder

    return break_data


def _corrupt(folder):
    with open(folder / "recordings" / "3_george_5.wav", "ab") as handle:
        handle.write(b"\0")
    return folder


SPEECH_BAD_INPUTS = (
    BadInput(DataError, r"No fsdd data found\. Received: --data-dir .*empty \(looked in .*\)\. Expected recordings",
             break_data=lambda folder: (folder / "empty").mkdir() or folder / "empty"),
    BadInput(DataError, r"Checksum mismatch for .*3_george_5\.wav", break_data=_corrupt),
    BadInput(DataError, r"File listed in SHA256SUMS is missing\. Received: .*7_theo_6\.wav does not exist",
             break_data=lambda folder: (folder / "recordings" / "7_theo_6.wav").unlink() or folder),
    BadInput(DataError, r"Unexpected file name .*hello\.wav\. Received: 'hello\.wav'\. Expected the FSDD pattern "
                        r"digit_speaker_index\.wav.*\. Fix: remove or rename",
             break_data=_then_resum(lambda recordings: write_wav(recordings / "hello.wav", np.zeros(800)))),
    BadInput(DataError, r"Wrong sample rate in .*2_george_0\.wav\. Received: 16000 Hz\. Expected 8000 Hz",
             break_data=_then_resum(lambda recordings: write_wav(recordings / "2_george_0.wav", np.zeros(800),
                                                                 sample_rate=16000))),
    BadInput(DataError, r"Unreadable WAV file .*4_theo_5\.wav",
             break_data=_then_resum(lambda recordings: (recordings / "4_theo_5.wav").write_bytes(b"RIFF...."))),
    BadInput(ConfigError, r"Received: held_out_speaker='nobody'\. Expected one of: george",
             overrides=("held_out_speaker=nobody",)),
    BadInput(DataError, r"No clips of the held-out speaker in .*Received: held_out_speaker='lucas'\. Expected one of "
                        r"the folder's speakers: george, theo", overrides=("split=speaker", "held_out_speaker=lucas")),
)

DIGITS = TaskCase(
    make_data=make_fsdd_folder,
    overrides=("batch_size=16",),
    metrics=("test_accuracy", "test_loss", "test_macro_f1"),
    bad_inputs=SPEECH_BAD_INPUTS,
)

DIGIT_STRINGS = TaskCase(
    make_data=make_fsdd_folder,
    overrides=("num_train_utterances=16", "num_validation_utterances=4", "num_test_utterances=4", "batch_size=8"),
    metrics=("test_digit_error_rate", "test_string_accuracy", "test_digit_error_rate_greedy"),
    bad_inputs=(*SPEECH_BAD_INPUTS,
                BadInput(ConfigError, r"Invalid value for config key max_digits\. Received: max_digits=0",
                         overrides=("max_digits=0",))),
)

# === Gaming RL: the environment, a few hundred steps ===


def rl_case(algorithm):
    bad_inputs = (
        BadInput(ConfigError, r"Unknown Gymnasium environment\. Received: env_id='CartPol-v1'.*"
                              r"Did you mean 'CartPole-v1'\?", overrides=("env_id=CartPol-v1",)),
        BadInput(ConfigError, r"Unsupported action space\. Received: env_id='Pendulum-v1'",
                 overrides=("env_id=Pendulum-v1",)),
        BadInput(ConfigError, r"Invalid value for config key gamma\. Received: gamma=1\.5", overrides=("gamma=1.5",)),
        BadInput(ConfigError, r"Invalid value for config key final_epsilon\. Received: final_epsilon=2\.0",
                 overrides=("final_epsilon=2.0",)) if algorithm == "dqn" else
        BadInput(ConfigError, r"Invalid value for config key clip_range\. Received: clip_range=0\.0",
                 overrides=("clip_range=0.0",)),
    )
    return TaskCase(
        make_data=lambda folder: None,
        overrides=("total_env_steps=256", "eval_interval=256", "eval_episodes=1", "test_episodes=2",
                   "max_episode_steps=50", "gif_max_frames=0"),
        metrics=("test_return_mean", "test_return_std", "test_return_min", "test_episode_length_mean"),
        bad_inputs=bad_inputs,
    )


def alphazero_case(game):
    """Self-play on the game's rules: one tiny iteration, two test games against a random player."""
    bad_inputs = (
        BadInput(ConfigError, r"Invalid value for config key game\. Received: game='chess'", overrides=("game=chess",)),
        BadInput(ConfigError, r"Invalid value for config key dirichlet_fraction\. Received: dirichlet_fraction=1\.5",
                 overrides=("dirichlet_fraction=1.5",)),
    )
    if game == "connect4":
        bad_inputs += (BadInput(ConfigError, r"Exhaustive minimax only solves tic-tac-toe here\. Received: "
                                             r"game='connect4'", overrides=("opponents=minimax",)),)
    return TaskCase(make_data=lambda folder: None, overrides=("iterations=1", "opponents=random", "test_games=2"),
                    metrics=("test_score", "test_score_vs_random", "test_network_score_vs_random"),
                    bad_inputs=bad_inputs)


CASES = {
    ("vision", "classification"): VISION,
    ("speech", "digits"): DIGITS,
    ("speech", "digit_strings"): DIGIT_STRINGS,
    **{("gaming_rl", task): rl_case(task.rsplit("-", 1)[1]) for task in catalog.tasks_of("gaming_rl")
       if not task.endswith("-alphazero")},
    ("gaming_rl", "connect4-alphazero"): alphazero_case("connect4"),
    ("gaming_rl", "tictactoe-alphazero"): alphazero_case("tictactoe"),
    ("recommender", "rating"): rating_case(make_movielens_folder),
    ("recommender", "retrieval"): retrieval_case(make_movielens_folder),
    ("nlp", "text_classification"): TEXT_CLASSIFICATION,
    ("nlp", "transfer"): TRANSFER,
    ("nlp", "language_model"): LANGUAGE_MODEL,
    ("nlp", "translation"): TRANSLATION,
    ("vision", "autoencoder"): AUTOENCODER,
    ("vision", "vae"): VAE,
    ("vision", "gan"): GAN,
    ("vision", "diffusion"): DIFFUSION,
    ("vision", "detection"): PHOTO_DETECTION,
    ("vision", "segmentation"): PHOTO_SEGMENTATION,
}
ALL_TASKS = [(app, task) for app in catalog.APPS for task in catalog.tasks_of(app)]
# Tasks whose model is chosen by config: every model through the harness too (the CASES entry is the first).
MODEL_CASES = {("fraud", "detection", model): detection_case(model) for model in FRAUD_MODELS}
MODEL_CASES[("speech", "digits", "embedding")] = dataclasses.replace(
    # No waveform augmentation, as --preset embedding: the head trains on the pooled embeddings computed once.
    DIGITS, overrides=(*DIGITS.overrides, "model=embedding", "utterance_normalization=none", "reverb_probability=0",
                       "clip_seconds=1.5", "dense_units=0", "label_smoothing=0"))
CASES[("fraud", "detection")] = MODEL_CASES[("fraud", "detection", FRAUD_MODELS[0])]


@pytest.mark.parametrize(("app", "task"), ALL_TASKS, ids=[f"{app}-{task}" for app, task in ALL_TASKS])
def test_task_keeps_the_contract_on_tiny_data(app, task, tmp_path):
    if (app, task) not in CASES:
        pytest.fail(f"Task {app}/{task} is in pipelines.catalog but has no harness data. Expected an entry "
                    f"CASES[({app!r}, {task!r})] in tests/test_tasks.py: a TaskCase with tiny data in the "
                    "official layout, overrides for one short fit, its metric keys and its bad inputs.")
    run_task_test(app, task, CASES[(app, task)], tmp_path)


@pytest.mark.parametrize("key", list(MODEL_CASES)[1:], ids=["-".join(key) for key in list(MODEL_CASES)[1:]])
def test_each_model_of_a_task_keeps_the_contract(key, tmp_path):
    run_task_test(key[0], key[1], MODEL_CASES[key], tmp_path)


def test_every_harness_case_is_a_catalog_task():
    assert set(CASES) <= set(ALL_TASKS), sorted(set(CASES) - set(ALL_TASKS))
