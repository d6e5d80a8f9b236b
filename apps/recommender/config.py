"""Recommender configs and presets. No TensorFlow here: `dlsuite list` reads this module.

Two tasks on MovieLens ratings (`apps/recommender/README.md` tells the story):
- `rating`: predict a user's rating of a movie (matrix factorization or a neural hybrid), RMSE/MAE.
- `retrieval`: two towers trained with an in-batch softmax, top-k over the catalogue, Precision/Recall/NDCG@k.
"""

import dataclasses
import typing

from shared.checks import check_choice, check_range, check_sizes
from shared.config import SupervisedConfig, TaskSpec
from shared.errors import ConfigError
from shared.optimizers import ACTIVATIONS

# How the ratings are split into train and test (validation is always a seeded slice of train):
# "auto": official fold `fold` for the ml-100k layout, a seeded random split for the CSV layout;
# "fold": ml-100k's u<fold>.base / u<fold>.test; "ua", "ub": ml-100k's ua/ub (10 test ratings per user);
# "random": a seeded random `test_fraction` of all ratings; "per_user": a seeded random `test_fraction`
# of each user's ratings (the Microsoft Recommenders protocol: python_stratified_split).
SPLITS = ("auto", "fold", "ua", "ub", "random", "per_user")
OFFICIAL_SPLITS = ("fold", "ua", "ub")
RATING_MODELS = ("mf", "hybrid")


@dataclasses.dataclass(frozen=True)
class RecommenderConfig(SupervisedConfig):
    """What both tasks share: the split, the embeddings, regularization and the content features."""

    split: str = "auto"
    fold: int = 1  # with split=fold (or auto on ml-100k): u1..u5
    test_fraction: float = 0.2  # with split=random or per_user
    split_seed: int = 42  # the random and per_user splits; `seed` drives the validation slice and the model
    embedding_dim: int = 32
    hidden_units: typing.Tuple[int, ...] = (64, 32)
    activation: str = "relu"
    dropout_rate: float = 0.0
    l2: float = 0.0  # on the embeddings of each batch's users and items (per example) and on dense kernels
    use_features: bool = True  # genres, year; age, gender, occupation (ml-100k only) where the model uses content
    num_sample_users: int = 5  # users whose top 10 (with titles) the run logs as a table

    def __post_init__(self):
        super().__post_init__()
        check_choice("split", self.split, SPLITS)
        check_range("fold", self.fold, 1, 5)
        check_range("test_fraction", self.test_fraction, 0, 1, low_inclusive=False, high_inclusive=False)
        check_range("split_seed", self.split_seed, 0, 2**31 - 1)
        check_range("embedding_dim", self.embedding_dim, 1)
        check_sizes("hidden_units", self.hidden_units, "64,32 (or --set hidden_units= for none)", count=(0, None))
        check_choice("activation", self.activation, ACTIVATIONS)
        check_range("dropout_rate", self.dropout_rate, 0, 1, high_inclusive=False)
        check_range("l2", self.l2, 0)
        check_range("num_sample_users", self.num_sample_users, 0)


@dataclasses.dataclass(frozen=True)
class RatingConfig(RecommenderConfig):
    """Rating prediction: global mean + user and item biases + an interaction term.

    model "mf": the interaction is the dot product of a user and an item factor (biased matrix
    factorization). model "hybrid": NeuMF-style, that product (GMF) beside an MLP over separate id
    embeddings, the item's content (genres, year) and the user's (age, gender, occupation).
    `use_history` (both): the user's factor also holds the mean of implicit factors of the other movies
    they rated in train (SVD++).
    """

    model: str = "mf"
    use_history: bool = False
    history_l2: float = 0.0  # L2 on the history factors (kernel)
    bias_l2: typing.Optional[float] = None  # L2 on the biases; None: the same as l2

    def __post_init__(self):
        super().__post_init__()
        check_choice("model", self.model, RATING_MODELS)
        check_range("bias_l2", self.bias_l2, 0)
        check_range("history_l2", self.history_l2, 0)


@dataclasses.dataclass(frozen=True)
class RetrievalConfig(RecommenderConfig):
    """Two towers (user: id, features and the movies rated in train; item: id and content) scored by the
    cosine of their vectors over a temperature, trained with an in-batch softmax (keras-rs logQ
    correction and accidental-hit removal), served by brute-force top-k over the catalogue."""

    split: str = "per_user"
    test_fraction: float = 0.25
    temperature: float = 0.1
    # The logQ correction subtracts logq_strength * log(p) from each in-batch logit, p the movie's share of the
    # training pairs. 1 is the textbook correction (an unbiased estimate of the full softmax); above 1 it
    # over-corrects, so the served cosine must favour popular movies more; 0 turns it off.
    logq_strength: float = 1.0
    use_history: bool = True
    history_dropout_rate: float = 0.0  # drops movies from the user's history during training (denoising)
    top_k: int = 10  # what serving_default returns and the @k of the headline metrics
    curve_k: int = 50  # the `ranking` signature returns this many: Recall@k and NDCG@k curves for k = 1..curve_k

    def __post_init__(self):
        super().__post_init__()
        check_range("temperature", self.temperature, 0, low_inclusive=False)
        check_range("logq_strength", self.logq_strength, 0, 3)
        check_range("history_dropout_rate", self.history_dropout_rate, 0, 1, high_inclusive=False)
        check_range("top_k", self.top_k, 1)
        check_range("curve_k", self.curve_k, 1)
        if self.curve_k < self.top_k:
            raise ConfigError(
                f"Invalid value for config key curve_k. Received: curve_k={self.curve_k} with top_k={self.top_k}. "
                f"Expected curve_k >= top_k. Fix: --set curve_k={max(50, self.top_k)}."
            )


# === Rating presets ===


def rating_default():
    """Biased MF whose user and movie factors also hold their neighbourhoods (the user's other rated movies and
    their ratings, the movie's other raters and theirs: asymmetric SVD / SVD++), official fold u1.

    benchmarks/recommender_rating.py runs it on u1..u5; apps/recommender/README.md has the runs that chose
    it (plain MF reaches 0.926 on u1, this 0.906).
    """
    return RatingConfig(
        model="mf", use_history=True, epochs=40, batch_size=256, learning_rate=2e-3, embedding_dim=64, l2=0.3,
        bias_l2=0.02, early_stopping_patience=3, validation_fraction=0.05,
    )


def rating_hybrid():
    """The NeuMF-style hybrid over ids, content and the neighbourhoods."""
    return dataclasses.replace(rating_default(), model="hybrid", hidden_units=(64, 32), dropout_rate=0.2)


def rating_smoke():
    """A slice of the data, a few epochs, tiny embeddings: seconds. For CI and trying the pipeline."""
    return dataclasses.replace(rating_default(), epochs=3, embedding_dim=8, l2=0.05, learning_rate=1e-2,
                               max_train_examples=20000, max_test_examples=2000, early_stopping_patience=0)


def rating_hybrid_smoke():
    return dataclasses.replace(rating_smoke(), model="hybrid", hidden_units=(16,), dropout_rate=0.1)


# === Retrieval presets ===


def retrieval_default():
    """The Microsoft Recommenders protocol on ML-100K: per-user 75/25 split, top 10 of the unrated movies.

    apps/recommender/README.md has the runs that chose it: the user's history, dropout on it and in the
    towers' hidden layer, wider vectors and a logQ correction of strength 1.2 each added about 0.01
    NDCG@10; 256 dimensions rather than 128 keep Recall@10 above 0.22 on every seed; early stopping
    watches the validation NDCG@10 of the whole catalogue.
    """
    return RetrievalConfig(epochs=40, batch_size=512, learning_rate=1e-3, embedding_dim=256, hidden_units=(256,),
                           dropout_rate=0.3, history_dropout_rate=0.5, logq_strength=1.2, l2=0.0,
                           early_stopping_patience=5, validation_fraction=0.05)


def retrieval_smoke():
    return dataclasses.replace(retrieval_default(), epochs=3, learning_rate=3e-3, embedding_dim=16, hidden_units=(16,),
                               max_train_examples=20000, early_stopping_patience=0)


TASKS = {
    "rating": TaskSpec(
        description="Predict a user's rating of a movie (MF or NCF-style hybrid); serves user_id, item_id -> rating.",
        config_class=RatingConfig,
        presets={"default": rating_default, "hybrid": rating_hybrid, "smoke": rating_smoke,
                 "hybrid_smoke": rating_hybrid_smoke},
        task_class="apps.recommender.tasks.rating:RatingTask",
    ),
    "retrieval": TaskSpec(
        description="Two-tower retrieval, top-k movies over the catalogue; serves user_id -> item ids, titles, scores.",
        config_class=RetrievalConfig,
        presets={"default": retrieval_default, "smoke": retrieval_smoke},
        task_class="apps.recommender.tasks.retrieval:RetrievalTask",
    ),
}
