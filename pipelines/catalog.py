"""The explicit table of apps. No registries, no import side effects.

Each app's `config.py` defines `TASKS: dict[str, shared.config.TaskSpec]` and must
not import TensorFlow, so `dlsuite list` and `--help` stay fast.
"""

import importlib

from shared.errors import UsageError

APPS = {
    "vision": ("apps.vision.config", "Images: Fashion-MNIST/MNIST classification and generative models (autoencoder, VAE, "
                                     "GAN, diffusion); pedestrian detection and segmentation on photographs."),
    "gaming_rl": ("apps.gaming_rl.config", "Reinforcement learning: DQN and PPO agents on Gymnasium games; "
                                           "AlphaZero self-play on Connect Four and tic-tac-toe."),
    "speech": ("apps.speech.config", "Spoken digits and digit strings (FSDD WAV files, 8 kHz; CNN/CRNN, CTC)."),
    "recommender": ("apps.recommender.config", "MovieLens ratings: rating prediction (MF, NCF hybrid) and two-tower "
                                               "retrieval (keras-rs)."),
    "nlp": ("apps.nlp.config", "Text from raw strings: classification (CNN/BiRNN/transformer, or a pretrained MiniLM "
                               "encoder), English-Spanish translation and a character language model (keras-hub)."),
    "fraud": ("apps.fraud.config", "Card-fraud detection on a time-ordered transaction stream (Fraud Detection Handbook)."),
}


def app_names():
    return list(APPS)


def tasks_of(app):
    if app not in APPS:
        raise UsageError(
            f"Unknown app. Received: app={app!r}. Expected one of: {', '.join(APPS)}. "
            "Run `dlsuite list` to see apps and their tasks."
        )
    return importlib.import_module(APPS[app][0]).TASKS


def task_spec(app, task=None):
    """Return `(task_name, TaskSpec)`; `task=None` picks the app's first task."""
    tasks = tasks_of(app)
    if task is None:
        task = next(iter(tasks))
    if task not in tasks:
        raise UsageError(
            f"Unknown task for app {app}. Received: --task {task}. Expected one of: {', '.join(tasks)}."
        )
    return task, tasks[task]


def load_task(spec):
    """Import the Task class of a TaskSpec (this imports TensorFlow) and instantiate it."""
    module_name, class_name = spec.task_class.split(":")
    return getattr(importlib.import_module(module_name), class_name)()
