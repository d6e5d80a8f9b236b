"""Fraud detection configs and presets. No TensorFlow here: `dlsuite list` reads this module.

One task, `detection`, on a time-ordered stream of card transactions (`apps/fraud/README.md` tells the story).
The model is chosen by config: `supervised` (a feed-forward classifier), `autoencoder` and `vae` (trained on
genuine transactions only; the score is how badly a transaction is reconstructed) and `sequence` (a GRU over
the customer's last transactions). The dates follow the Fraud Detection Handbook's reference experiment and its
prequential validation: train 2018-07-11 ... 07-17, a week of delay (labels arrive a week late), validation
07-25 ... 07-31, another week of delay, test 2018-08-08 ... 08-14.
"""

import dataclasses
import datetime
import typing

from shared.checks import check_choice, check_range, check_sizes
from shared.config import SupervisedConfig, TaskSpec
from shared.errors import ConfigError

MODELS = ("supervised", "autoencoder", "vae", "sequence")
IMBALANCE = ("class_weight", "focal", "none")  # supervised and sequence: how the 0.9% of frauds weigh in the loss
THRESHOLDS = ("precision", "alert_budget")  # how after_fit picks the decision threshold on validation scores


def parse_date(name, value):
    """A `YYYY-MM-DD` config value as a date, or ConfigError naming the key."""
    try:
        return datetime.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ConfigError(f"Invalid value for config key {name}. Received: {name}={value!r}. Expected a date "
                          f"YYYY-MM-DD, e.g. --set {name}=2018-08-08.") from None


@dataclasses.dataclass(frozen=True)
class FraudConfig(SupervisedConfig):
    """The periods, the features' delay, the model and the decision rule.

    Periods are inclusive days. The model trains on `train_start ... train_end`; labels are known `delay_days`
    late, so it is validated on the `validation_days` that start `delay_days` after `train_end` (early stopping
    watches them each epoch, and the decision threshold is chosen on them), and tested on `test_start ...
    test_end`, at least `delay_days` after the validation period: on the first test day, the validation
    period's labels are just known. The handbook's prequential validation (chapter 5), with the validated model
    itself served.
    """

    train_start: str = "2018-07-11"
    train_end: str = "2018-07-17"
    test_start: str = "2018-08-08"
    test_end: str = "2018-08-14"
    delay_days: int = 7  # fraud labels are known this many days late: terminal risk features and the periods' gaps
    validation_days: int = 7
    model: str = "supervised"
    hidden_units: typing.Tuple[int, ...] = (500, 100)
    dropout_rate: float = 0.2
    ensemble_size: int = 1  # supervised, sequence: independent heads averaged (a deep ensemble in one model)
    imbalance: str = "none"
    focal_gamma: float = 2.0
    latent_dim: int = 4  # autoencoder, vae: the bottleneck
    sequence_length: int = 5  # sequence: how many of the customer's previous transactions the GRU reads
    recurrent_units: int = 32
    feature_bins: int = 2  # supervised, sequence: each feature's tree-chosen bins (at most this many), one-hot
    # beside it; 0: off. 2 (one step per feature) won on the validation week for both (README, "The numbers")
    threshold_rule: str = "alert_budget"
    target_precision: float = 0.5  # threshold_rule=precision: the lowest threshold whose validation precision is this
    alerts_per_day: int = 100  # threshold_rule=alert_budget: investigators check this many cards a day
    top_k: int = 100  # card precision top-k per day (CP@k)
    drop_known_compromised: bool = True  # the handbook's test sets leave out cards already known compromised

    def __post_init__(self):
        super().__post_init__()
        dates = {name: parse_date(name, getattr(self, name)) for name in
                 ("train_start", "train_end", "test_start", "test_end")}
        for first, second in (("train_start", "train_end"), ("test_start", "test_end"), ("train_end", "test_start")):
            if dates[first] > dates[second] or (first == "train_end" and dates[first] == dates[second]):
                raise ConfigError(
                    f"Invalid period. Received: {first}={getattr(self, first)}, {second}={getattr(self, second)}. "
                    f"Expected {first} before {second}{'' if first == 'train_end' else ' (or the same day)'}: "
                    "training comes before the test. Fix the dates with --set."
                )
        check_range("delay_days", self.delay_days, 0, 60)
        check_range("validation_days", self.validation_days, 1, 60)
        validation_end = self.validation_period()[1]
        if validation_end + datetime.timedelta(days=self.delay_days) >= dates["test_start"]:
            raise ConfigError(
                f"Invalid period. Received: train_end={self.train_end}, delay_days={self.delay_days}, validation_days="
                f"{self.validation_days} (validation until {validation_end}), test_start={self.test_start}. Expected "
                f"test_start after {validation_end + datetime.timedelta(days=self.delay_days)}: the validation labels "
                "must be known when the test starts. Fix: an earlier --set train_end or a later --set test_start."
            )
        check_choice("model", self.model, MODELS)
        check_sizes("hidden_units", self.hidden_units, "500,100")
        check_range("dropout_rate", self.dropout_rate, 0, 1, high_inclusive=False)
        check_range("ensemble_size", self.ensemble_size, 1, 20)
        if self.ensemble_size > 1 and self.imbalance == "class_weight":
            raise ConfigError(f"Invalid combination. Received: ensemble_size={self.ensemble_size} with imbalance="
                              "class_weight. Expected one of them: Keras reads per-head targets as one-hot classes. "
                              "Fix: --set imbalance=focal, or --set ensemble_size=1.")
        check_choice("imbalance", self.imbalance, IMBALANCE)
        check_range("focal_gamma", self.focal_gamma, 0)
        check_range("latent_dim", self.latent_dim, 1)
        check_range("sequence_length", self.sequence_length, 1, 100)
        check_range("recurrent_units", self.recurrent_units, 1)
        check_range("feature_bins", self.feature_bins, 0, 256)
        if self.feature_bins == 1:
            raise ConfigError("Invalid value for config key feature_bins. Received: feature_bins=1. Expected 0 (no "
                              "bins) or at least 2: one bin draws no boundary. Fix it with --set feature_bins=2.")
        check_choice("threshold_rule", self.threshold_rule, THRESHOLDS)
        check_range("target_precision", self.target_precision, 0, 1, low_inclusive=False)
        check_range("alerts_per_day", self.alerts_per_day, 1)
        check_range("top_k", self.top_k, 1)

    def date(self, name):
        return parse_date(name, getattr(self, name))

    def validation_period(self):
        """`(first, last)` validation days: the `validation_days` starting `delay_days` after `train_end`."""
        first = self.date("train_end") + datetime.timedelta(days=self.delay_days + 1)
        return first, first + datetime.timedelta(days=self.validation_days - 1)


# === Presets ===


def default():
    """The feed-forward classifier on the handbook's features, on the reference experiment's periods."""
    return FraudConfig(epochs=30, batch_size=256, learning_rate=1e-3, early_stopping_patience=3)


def autoencoder():
    """Trained on genuine payments only: no labels, so no tree-chosen bins."""
    return dataclasses.replace(default(), model="autoencoder", hidden_units=(64, 16), dropout_rate=0.0, feature_bins=0)


def vae():
    return dataclasses.replace(default(), model="vae", hidden_units=(64, 16), dropout_rate=0.0, feature_bins=0)


def sequence():
    """The GRU over the card's last payments, with the weights' moving average (`ema_momentum=0.99`) served: chosen
    on the validation week (README, "The numbers"). The average learns slower: early stopping gets up to 50 epochs."""
    return dataclasses.replace(default(), model="sequence", hidden_units=(100,), ema_momentum=0.99, epochs=50)


def smoke():
    """A few epochs of a small network on the reference periods: seconds, for CI and trying the pipeline."""
    return dataclasses.replace(default(), epochs=3, hidden_units=(32,), batch_size=512, early_stopping_patience=0)


TASKS = {
    "detection": TaskSpec(
        description="Card-fraud scores on a time-ordered transaction stream (feed-forward, autoencoder, VAE, GRU); "
                    "serves raw fields + aggregates -> fraud_score, is_fraud.",
        config_class=FraudConfig,
        presets={"default": default, "autoencoder": autoencoder, "vae": vae, "sequence": sequence, "smoke": smoke},
        task_class="apps.fraud.tasks.detection:DetectionTask",
    ),
}
