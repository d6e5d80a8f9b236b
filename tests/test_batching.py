"""`pipelines.batching.Batcher` on its own: a signature slower than the time between requests (a photo model)
gets the requests that arrived during a call merged into the next call, instead of one small call after
another, and no request waits for a worker that is free."""

import asyncio
import threading
import time

import numpy as np

from pipelines.batching import Batcher


class SlowSignature:
    """Rows -> their doubles, after `seconds` of work per call; records each call's number of rows."""

    name = "serving_default"
    chunked = True

    def __init__(self, seconds):
        self.seconds, self.calls, self.lock = seconds, [], threading.Lock()

    def __call__(self, arrays):
        with self.lock:
            self.calls.append(len(arrays["x"]))
        time.sleep(self.seconds)
        return {"y": arrays["x"] * 2}


async def _staggered(batcher, signature, count, gap_seconds):
    async def one(index):
        await asyncio.sleep(index * gap_seconds)
        started = time.perf_counter()
        outputs = await batcher(signature, {"x": np.array([[index]], np.float32)})
        return outputs["y"], time.perf_counter() - started

    return await asyncio.gather(*(one(index) for index in range(count)))


def test_requests_arriving_during_a_busy_call_leave_together_with_the_first_free_worker():
    signature = SlowSignature(0.1)
    batcher = Batcher(max_batch_size=64, timeout_seconds=0.001, threads=1)
    answers = asyncio.run(_staggered(batcher, signature, 40, 0.005))  # 40 requests over 0.2 s, 0.1 s a call
    assert [float(y[0, 0]) for y, _ in answers] == [2.0 * index for index in range(40)]  # each its own row
    assert sum(signature.calls) == 40
    # The first call takes the first request; the ~20 that arrive during it leave together, then the rest.
    assert len(signature.calls) <= 5 and max(signature.calls) >= 12, signature.calls


def test_a_request_to_an_idle_batcher_leaves_after_the_timeout_only():
    signature = SlowSignature(0.0)
    batcher = Batcher(max_batch_size=64, timeout_seconds=0.01, threads=2)
    answers = asyncio.run(_staggered(batcher, signature, 3, 0.2))  # far apart: each finds the workers free
    assert signature.calls == [1, 1, 1]
    assert all(seconds < 0.15 for _, seconds in answers), [seconds for _, seconds in answers]
