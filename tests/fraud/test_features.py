"""The features: causal (a planted future fraud changes nothing before it; a label changes the terminal
features only once the delay has passed), and the calendar flags inside the model agree with pandas."""

import numpy as np
import pandas as pd
import pytest

from apps.fraud import features
from tests.fraud.tiny_data import stream

PLANTED_AT = pd.Timestamp("2018-07-20 12:00:00")


def _frame():
    frame = stream().reset_index(drop=True)
    return frame[["TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT", "TX_FRAUD"]].astype(
        {"CUSTOMER_ID": np.int64, "TERMINAL_ID": np.int64})


def _aggregates(frame):
    frame = frame.sort_values("TX_DATETIME", kind="stable").reset_index(drop=True)
    return frame, features.aggregates(frame, delay_days=7)


def test_a_planted_future_fraud_changes_no_feature_before_it():
    frame, before = _aggregates(_frame())
    busy = frame[frame["TX_DATETIME"] < PLANTED_AT].iloc[-1]  # a card and a terminal with history
    planted = pd.DataFrame({"TX_DATETIME": [PLANTED_AT], "CUSTOMER_ID": [busy["CUSTOMER_ID"]],
                            "TERMINAL_ID": [busy["TERMINAL_ID"]], "TX_AMOUNT": [5000.0], "TX_FRAUD": [1]})
    planted_frame, after = _aggregates(pd.concat([frame, planted], ignore_index=True))
    past = (frame["TX_DATETIME"] < PLANTED_AT).to_numpy()
    pd.testing.assert_frame_equal(before[past], after[(planted_frame["TX_DATETIME"] < PLANTED_AT).to_numpy()])
    # Not vacuous: the planted transaction does move its card's later features.
    later = (planted_frame["TX_DATETIME"] > PLANTED_AT) & (planted_frame["CUSTOMER_ID"] == busy["CUSTOMER_ID"])
    assert later.any() and (after.loc[later.to_numpy(), "customer_avg_amount_30day"] > 100).all()


def test_a_fraud_label_reaches_the_terminal_features_only_after_the_delay():
    frame, before = _aggregates(_frame())
    row = int(np.flatnonzero((frame["TX_DATETIME"] > PLANTED_AT) & (frame["TX_FRAUD"] == 0))[0])
    flipped = frame.copy()
    flipped.loc[row, "TX_FRAUD"] = 1
    _same, after = _aggregates(flipped)
    moment = frame.loc[row, "TX_DATETIME"]
    within_delay = (frame["TX_DATETIME"] < moment + pd.Timedelta(days=7)).to_numpy()
    pd.testing.assert_frame_equal(before[within_delay], after[within_delay])  # labels arrive a week late
    terminal = (frame["TERMINAL_ID"] == frame.loc[row, "TERMINAL_ID"]).to_numpy()
    changed = ~np.isclose(before["terminal_risk_30day"], after["terminal_risk_30day"])
    assert changed.any() and (changed <= (terminal & ~within_delay)).all()  # later, and only that terminal


@pytest.mark.parametrize("stamp", ["2018-08-08 00:01:14", "2018-08-11 06:59:59", "2018-08-12 07:00:00",
                                   "2020-02-29 23:59:59", "2000-03-01 12:00:00", "1999-12-31 03:00:00"])
def test_the_models_calendar_flags_are_the_handbooks(stamp):
    weekday, weekend, night = (np.asarray(value)[0] for value in features.calendar_flags(np.array([stamp])))
    timestamp = pd.Timestamp(stamp)
    assert weekday == timestamp.weekday()
    assert weekend == float(timestamp.weekday() >= 5)
    assert night == float(timestamp.hour <= 6)


def test_serving_inputs_carry_the_raw_fields_the_aggregates_and_the_history():
    frame, aggregated = _aggregates(_frame())
    inputs = features.serving_inputs(frame, aggregated, sequence_length=3)
    assert set(inputs) == {"tx_datetime", "tx_amount", *features.AGGREGATES, "history_tx_amount", "history_tx_datetime"}
    customer = frame["CUSTOMER_ID"].to_numpy()
    row = int(np.flatnonzero(customer == customer[-1])[-1])
    previous = np.flatnonzero(customer == customer[-1])[-4:-1]  # the card's three transactions before the last
    np.testing.assert_allclose(inputs["history_tx_amount"][row], frame["TX_AMOUNT"].to_numpy()[previous], rtol=1e-6)
    assert list(inputs["history_tx_datetime"][0]) == ["", "", ""]  # the first transaction has no history
    matrix = np.asarray(features.TransactionFeatures()({name: value for name, value in inputs.items()
                                                          if not name.startswith("history")}))
    assert matrix.shape == (len(frame), len(features.TransactionFeatures.NAMES)) and np.isfinite(matrix).all()


def test_the_aggregates_equal_an_independent_implementation_of_the_handbooks_definitions():
    from tests.fraud import learning  # prefix sums and binary search, not pandas' rolling windows

    frame, aggregated = _aggregates(_frame())
    independent = learning._features(frame.copy())
    for name in features.AGGREGATES:
        np.testing.assert_allclose(aggregated[name], independent[name], rtol=1e-5, atol=1e-5, err_msg=name)
