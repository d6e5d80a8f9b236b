"""A toy app for the contract tests: 2-D points, a positive class, a decision threshold chosen after fit.

It exists to exercise every part of the contract in seconds: a filtered (unknown-size) training set,
class weights, `after_fit` state with a numpy array, a second signature that samples from a `seed`,
and a data folder in a simple CSV layout (`points.csv`: x0,x1,label) or in-memory data.
"""

import dataclasses

from shared.checks import check_range
from shared.config import SupervisedConfig, TaskSpec


@dataclasses.dataclass(frozen=True)
class ToyConfig(SupervisedConfig):
    num_examples: int = 600
    positive_fraction: float = 0.5
    class_weighting: bool = False
    alert_fraction: float = 0.25  # the threshold flags this share of validation points

    def __post_init__(self):
        super().__post_init__()
        check_range("num_examples", self.num_examples, 64)
        check_range("positive_fraction", self.positive_fraction, 0, 1, low_inclusive=False, high_inclusive=False)
        check_range("alert_fraction", self.alert_fraction, 0, 1, low_inclusive=False, high_inclusive=False)


def default():
    return ToyConfig(epochs=3, batch_size=32, learning_rate=0.05, learning_rate_schedule="cosine",
                     early_stopping_patience=0)


TASKS = {"points": TaskSpec("Toy 2-D points (contract tests).", ToyConfig, {"default": default, "smoke": default},
                            "tests.toy_app.app:PointsTask")}
