"""`dlsuite serve` on uvicorn + Starlette: JSON errors from every layer, memory bounded by design, dynamic batching.

One real server process serves a tiny export built here: `serving_default` takes float32 rows of any width
[None, None] and answers each row's sum, its width and how many rows TensorFlow saw in the call
(`rows_in_call`), so a test sees both that concurrent requests were merged and that rows of different widths
never were.
"""

import concurrent.futures
import json
import signal
import socket
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import free_port, start_cli_server, stop_server, wait_for_http
from tests.test_serve import _raw_exchange, _request, _rss_mb

NAME = "row-sums"
MAX_BODY_MB = 32
BATCH_TIMEOUT_MS = 50  # wide, so that the concurrent requests of a test surely meet in a queue


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    import keras
    import tensorflow as tf

    from shared.app import Endpoint
    from shared.export import export_version

    inputs = keras.Input((None,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda rows: rows * 2.0)(inputs))

    def sums(rows):
        count = tf.shape(rows)[0]
        return {"sums": tf.reduce_sum(model(rows), axis=1), "widths": tf.fill([count], tf.shape(rows)[1]),
                "rows_in_call": tf.fill([count], count)}

    root = tmp_path_factory.mktemp("exports")
    export_version(model, {"serving_default": Endpoint(sums, [tf.TensorSpec([None, None], tf.float32, name="rows")])},
                   root, NAME)
    return root / NAME


@pytest.fixture(scope="module")
def server(export):
    port = free_port()
    process = start_cli_server("serve", "--model-dir", export, "--port", port, "--read-timeout", 3,
                               "--max-body-mb", MAX_BODY_MB, "--batch-timeout-ms", BATCH_TIMEOUT_MS,
                               "--max-batch-size", 16)
    lines = []
    threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True).start()
    base = f"http://127.0.0.1:{port}/v1/models/{NAME}"
    try:
        wait_for_http(base, process)
        yield base, port, process, lines
    finally:
        stop_server(process)


def _predict(base, rows):
    return _request(f"{base}:predict", {"instances": rows})


def _batching_metrics(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/monitoring/prometheus/metrics", timeout=10) as response:
        text = response.read().decode()
    return {line.split("{")[0]: int(line.split()[-1]) for line in text.splitlines() if line.startswith("dlsuite_")}


def test_concurrent_requests_share_calls_and_get_their_own_rows(server):
    base, port, _, _ = server
    rng = np.random.default_rng(0)
    requests = [rng.normal(size=(int(rng.integers(1, 4)), 5)).round(3).tolist() for _ in range(24)]
    singles = [_predict(base, rows)[1]["predictions"] for rows in requests]  # one at a time: a call each
    assert all(answer["rows_in_call"] == len(rows) for rows, single in zip(requests, singles) for answer in single)
    before = _batching_metrics(port)
    with concurrent.futures.ThreadPoolExecutor(len(requests)) as pool:
        together = list(pool.map(lambda rows: _predict(base, rows), requests))
    after = _batching_metrics(port)
    for rows, single, (status, answer) in zip(requests, singles, together):
        assert status == 200 and len(answer["predictions"]) == len(rows)
        for got, want in zip(answer["predictions"], single):
            assert got["sums"] == pytest.approx(want["sums"], abs=1e-5) and got["widths"] == 5
    merged = max(row["rows_in_call"] for _, answer in together for row in answer["predictions"])
    calls = after["dlsuite_batch_calls_total"] - before["dlsuite_batch_calls_total"]
    assert after["dlsuite_batched_requests_total"] - before["dlsuite_batched_requests_total"] == len(requests)
    assert calls < len(requests) // 2 and 4 <= merged <= 16, (calls, merged)  # merged, within --max-batch-size 16


def test_rows_of_different_widths_are_never_merged(server):
    base, _, _, _ = server
    requests = [[[1.0] * width] for width in (1, 2, 3, 4) * 4]
    with concurrent.futures.ThreadPoolExecutor(len(requests)) as pool:
        answers = list(pool.map(lambda rows: _predict(base, rows), requests))
    for rows, (status, answer) in zip(requests, answers):
        width = len(rows[0])
        assert status == 200 and answer["predictions"][0]["widths"] == width
        assert answer["predictions"][0]["sums"] == pytest.approx(2.0 * width)
        assert answer["predictions"][0]["rows_in_call"] <= 4  # only the four requests of its own width


def test_a_refused_row_fails_only_its_own_request(server):
    base, _, _, _ = server
    good, bad = [[1.0, 2.0]], [["x", 2.0]]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda rows: _predict(base, rows), [good, bad] * 4))
    assert [status for status, _ in answers] == [200, 400] * 4
    assert all(answer["predictions"][0]["sums"] == pytest.approx(6.0) for _, answer in answers[::2])


@pytest.mark.parametrize("method", ["PUT", "DELETE", "OPTIONS", "PATCH"])
def test_wrong_methods_get_json_405(server, method):
    base, _, _, _ = server
    status, answer = _request(f"{base}:predict", method=method, raw=b"{}")
    assert status == 405 and answer["error"] == f"{method} is not allowed on \"/v1/models/{NAME}:predict\". " \
                                               "Expected POST."


def _status_and_json(answer):
    head, _, body = answer.partition("\r\n\r\n")
    assert "content-type: application/json" in head.lower(), answer[:300]
    return int(head.split()[1]), json.loads(body)


@pytest.mark.parametrize(("request_head", "status", "fragment"), [
    (b"GARBAGE\r\n\r\n", 400, "Invalid HTTP request (illegal request line: bytearray(b'GARBAGE'))"),
    (b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "Request URL too long"),
    (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % index for index in range(101)) + b"\r\n", 431,
     "Request header fields too large. Received: 102 header fields. Expected at most 100."),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n", 431,
     "Request header fields too large. Expected at most 16384 bytes"),
    (b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 404, "Not Found"),
    (b"GET http://x/v1/models/" + NAME.encode() + b"/nothing HTTP/1.1\r\nHost: x\r\n\r\n", 404, "Not Found"),
    (b"POST /v1/models/" + NAME.encode() + b":predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
     411, "Content-Length"),
], ids=["garbage line", "long url", "many headers", "huge header", "asterisk", "absolute url", "chunked"])
def test_what_the_http_parser_refuses_is_json_too(server, request_head, status, fragment):
    base, port, process, _ = server
    answer, _ = _raw_exchange(port, request_head)
    got_status, body = _status_and_json(answer)
    assert got_status == status and fragment in body["error"] and set(body) == {"error"}, body
    assert process.poll() is None and _request(base)[0] == 200


def test_a_stalled_request_head_gets_json_408(server):
    _, port, _, _ = server
    answer, seconds = _raw_exchange(port, b"POST /v1/models/" + NAME.encode())
    status, body = _status_and_json(answer)
    assert status == 408 and "request head did not arrive" in body["error"] and seconds < 3 + 3


def test_declared_bodies_cost_nothing_until_they_arrive(server):
    """20 connections each declare 31 MiB and send one byte: http.server allocated all 620 MiB at once."""
    base, port, process, _ = server
    head = (f"POST /v1/models/{NAME}:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {31 << 20}\r\n\r\n{{").encode()
    rss_before = _rss_mb(process.pid)
    connections = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(20)]
    try:
        for connection in connections:
            connection.sendall(head)
        time.sleep(1.5)
        rss_held = _rss_mb(process.pid)
        assert _request(base)[0] == 200  # GET answers while the uploads are stalled
        status, answer = _predict(base, [[1.0]])  # and so does a small predict
        assert status == 200, answer
    finally:
        for connection in connections:
            connection.close()
    print(f"\n20 connections x 31 MiB declared: server RSS {rss_before:.0f} MB before, {rss_held:.0f} MB while held")
    assert rss_held < rss_before + 30


def test_an_oversized_body_sent_whole_gets_413_before_it_is_read(server):
    base, port, process, _ = server
    size = (MAX_BODY_MB + 1) << 20
    rss_before = _rss_mb(process.pid)
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(f"POST /v1/models/{NAME}:predict HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n"
                           .encode())
        sent = 0
        try:
            while sent < size:
                sent += connection.send(b" " * (1 << 20))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed without reading the rest
        answer = connection.recv(65536).decode(errors="replace")
    assert answer.startswith("HTTP/1.1 413") and "--max-body-mb 32" in answer, answer[:300]
    assert sent < size and time.monotonic() - start < 5
    assert _rss_mb(process.pid) < rss_before + 20 and _request(base)[0] == 200


def test_worker_processes_share_the_port_and_stop_together(export):
    port = free_port()
    process = start_cli_server("serve", "--model-dir", export, "--port", port, "--workers", 2)
    base = f"http://127.0.0.1:{port}/v1/models/{NAME}"
    try:
        wait_for_http(base, process)
        with open(f"/proc/{process.pid}/task/{process.pid}/children") as children:
            workers = [int(pid) for pid in children.read().split()]
        assert len(workers) == 2
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda width: _predict(base, [[1.0] * width]), range(1, 17)))
        assert [answer["predictions"][0]["sums"] for _, answer in answers] == [2.0 * width for width in range(1, 17)]
    finally:
        process.send_signal(signal.SIGTERM)  # to the parent only: it passes the signal on
        assert process.wait(timeout=60) == -signal.SIGTERM  # as a single uvicorn process ends
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)


def test_answers_are_not_held_back_by_nagle():
    """h11 writes an answer's head and body apart; on a socket without TCP_NODELAY the kernel holds the body until
    the client acknowledges the head, and clients delay that acknowledgement by 40 ms, so every keep-alive request
    took 50 ms. The connections the server accepts on its `socket.create_server` socket get TCP_NODELAY."""
    import asyncio

    import uvicorn

    from pipelines.http_app import json_errors_protocol

    async def exchange():
        config = uvicorn.Config(app=None, http=json_errors_protocol(5.0, 8))
        config.load()
        made = []

        def factory():
            protocol = config.http_protocol_class(config=config, server_state=uvicorn.server.ServerState(),
                                                  app_state={})
            made.append(protocol)
            return protocol

        listening = socket.create_server(("127.0.0.1", 0))  # what `dlsuite serve` binds (proto 0)
        server = await asyncio.get_running_loop().create_server(factory, sock=listening)
        reader, writer = await asyncio.open_connection(*listening.getsockname()[:2])
        while not made or made[0].transport is None:
            await asyncio.sleep(0.01)
        accepted = made[0].transport.get_extra_info("socket")
        option = accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        writer.close()
        server.close()
        return option

    assert asyncio.run(exchange()) != 0
