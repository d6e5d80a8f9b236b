"""The fraud app through the CLI on tiny data: `dlsuite train`, `dlsuite evaluate` on another window (a later
month, as CSV) with the test dates as `--set` options, and `dlsuite serve` on 127.0.0.1: a good transaction is
scored, missing or bad fields get a 400 and the server keeps answering."""

import json
import re
import threading

import pytest

from tests.conftest import free_port, new_store, post_json, run_cli, start_cli_server, stop_server, wait_for_http
from tests.fraud.tiny_data import make_csv_folder, make_parquet_folder, stream

SMOKE = ("--set", "epochs=1", "--set", "hidden_units=8", "--set", "alerts_per_day=2")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, empty_store):
    folder = tmp_path_factory.mktemp("fraud")
    data_dir = make_parquet_folder(folder / "transactions")
    tracking_uri = new_store(empty_store, folder)
    result = run_cli("train", "fraud", "--preset", "smoke", *SMOKE, "--data-dir", data_dir, "--tracking-uri",
                     tracking_uri, "--export-dir", folder / "exports", "--summary-json", folder / "summary.json")
    assert result.returncode == 0, result.stdout + result.stderr
    return folder, tracking_uri, json.loads((folder / "summary.json").read_text())


def _evaluate_october(trained, name, first_day):
    """`dlsuite evaluate` of the trained run on 2018-10-08 ... 10-14, from a CSV folder starting on `first_day`."""
    folder, tracking_uri, summary = trained
    data_dir = make_csv_folder(folder / name, stream(first_day, "2018-10-14", seed=1).reset_index(drop=True))
    return data_dir, run_cli("evaluate", "--run-id", summary["run_id"], "--data-dir", data_dir, "--tracking-uri",
                             tracking_uri, "--set", "test_start=2018-10-08", "--set", "test_end=2018-10-14")


def test_evaluate_scores_another_window_with_the_test_dates_as_options(trained):
    _folder, tracking_uri, summary = trained
    later, result = _evaluate_october(trained, "september", "2018-09-01")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"on {later}" in result.stdout
    records = re.search(r"test: (\d+)", result.stdout)  # the seven October days (24 a day) less the cards known
    assert records and 7 * 24 * 0.8 < int(records.group(1)) < 7 * 24  # compromised in the week before, blocked
    metrics = dict(re.findall(r"(test_\w+)=([\d.]+)", result.stdout))
    assert {"test_auc_roc", "test_average_precision", "test_card_precision_top_100"} <= set(metrics)
    assert metrics != {key: f"{value:.4f}" for key, value in summary["metrics"].items()}  # another window, other numbers
    outside = run_cli("evaluate", "--run-id", summary["run_id"], "--data-dir", later, "--tracking-uri", tracking_uri,
                      "--set", "test_start=2018-11-01", "--set", "test_end=2018-11-07")
    assert outside.returncode == 2 and "No transactions in the test period" in outside.stderr


def test_evaluate_refuses_a_folder_without_the_history_the_features_need(trained):
    _week, result = _evaluate_october(trained, "week-only", "2018-10-08")
    assert result.returncode == 2, result.stdout + result.stderr
    message = " ".join(result.stderr.split())
    assert re.search(r"Not enough history before the test period in .*week-only\. Received: transactions from "
                     r"2018-10-08, test_start=2018-10-08\. Expected transactions from 2018-09-01 on: .*Fix: add the "
                     r"days 2018-09-01 \.\.\. 2018-10-07 to the folder", message), result.stderr
    assert "test_auc_roc" not in result.stdout


def test_serve_scores_a_transaction_and_answers_400_to_bad_fields(trained):
    folder, _tracking_uri, _summary = trained
    port = free_port()
    process = start_cli_server("serve", "--model-dir", folder / "exports" / "fraud-detection", "--port", port)
    threading.Thread(target=lambda: process.stdout.read(), daemon=True).start()
    url = f"http://127.0.0.1:{port}/v1/models/fraud-detection"
    good = {"tx_datetime": "2018-08-08 03:12:00", "tx_amount": 310.5, "customer_nb_tx_1day": 2,
            "customer_avg_amount_1day": 180.0, "customer_nb_tx_7day": 9, "customer_avg_amount_7day": 61.2,
            "customer_nb_tx_30day": 35, "customer_avg_amount_30day": 58.9, "terminal_nb_tx_1day": 12,
            "terminal_risk_1day": 0.0, "terminal_nb_tx_7day": 80, "terminal_risk_7day": 0.0125,
            "terminal_nb_tx_30day": 300, "terminal_risk_30day": 0.01, "customer_std_amount_7day": 80.1,
            "customer_median_amount_7day": 40.0, "customer_max_amount_7day": 310.5, "customer_std_amount_30day": 45.3,
            "customer_median_amount_30day": 52.0, "customer_max_amount_30day": 310.5}
    try:
        wait_for_http(url, process)
        status, answer = post_json(f"{url}:predict", {"instances": [good]})
        assert status == 200, answer
        prediction = answer["predictions"][0]
        assert set(prediction) == {"fraud_score", "is_fraud"} and 0 <= prediction["fraud_score"] <= 1
        missing = {key: value for key, value in good.items() if key != "terminal_risk_7day"}
        for body, message in (
                ({"instances": [missing]}, r"terminal_risk_7day"),
                ({"instances": [{**good, "tx_datetime": "yesterday"}]}, r"tx_datetime must be YYYY-MM-DD HH:MM:SS"),
                ({"instances": [{**good, "tx_amount": -3.0}]}, r"tx_amount must be finite and >= 0"),
                ({"instances": [{**good, "terminal_risk_1day": 1.5}]}, r"terminal_risk_1day must be finite and >= 0 "
                                                                       r"and <= 1"),
                ({"instances": [{**good, "tx_amount": "a lot"}]}, r"tx_amount"),
        ):
            status, answer = post_json(f"{url}:predict", body)
            assert status == 400 and re.search(message, answer["error"]), (body, status, answer)
        assert post_json(f"{url}:predict", {"instances": [good]})[0] == 200  # still serving
    finally:
        stop_server(process)
