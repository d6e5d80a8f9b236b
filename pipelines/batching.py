"""Dynamic batching as TF Serving's: concurrent requests to one signature become one TensorFlow call.

A request of fewer than `max_batch_size` rows waits in the queue of its signature and per-example
shapes (images of different sizes never share a call) until the queue holds `max_batch_size` rows
or `timeout_seconds` passed since its first request and a worker thread is free; then the queue's
arrays are concatenated, run in one call on a worker thread, and each request gets back its own rows.
While every worker is busy, a queue whose time is up goes on filling and leaves with the first free
worker, as Triton's dynamic batcher forms a batch when a model instance frees up: a model that costs
more per call than the time between requests (a photo model) then runs the requests that arrived
during a call together, instead of one small call after another. Larger requests, and signatures
whose rows are tied together (a scalar seed, outputs that are not one per row), run alone.
If a merged call fails (a value the model refuses), each of its requests runs alone, so only the
faulty one gets the error.

Everything but the TensorFlow call runs on the event loop: no locks.
"""

import asyncio
import collections
import concurrent.futures
import dataclasses

import numpy as np


@dataclasses.dataclass
class _Queue:
    requests: list = dataclasses.field(default_factory=list)  # (arrays, rows, future)
    rows: int = 0
    timer: asyncio.TimerHandle | None = None
    due: bool = False  # its time is up; it leaves with the first free worker


class Batcher:
    """`await batcher(signature, arrays)` -> the signature's outputs for `arrays`, run in a shared call."""

    def __init__(self, max_batch_size=64, timeout_seconds=0.005, threads=2):
        self.max_batch_size = max_batch_size
        self.timeout_seconds = timeout_seconds
        self.threads = threads
        self.executor = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="predict")
        self.running = 0  # calls on the workers (or waiting for one)
        self.queues = {}
        self.calls = collections.Counter()  # signature name -> TensorFlow calls made for batched requests
        self.requests = collections.Counter()  # signature name -> requests that went through a queue
        self.largest = collections.Counter()  # signature name -> most requests merged into one call

    async def __call__(self, signature, arrays):
        loop = asyncio.get_running_loop()
        rows = _rows(signature, arrays)
        if rows is None or rows >= self.max_batch_size:
            return await self._run(signature, arrays)
        key = (signature, tuple((name, array.shape[1:], array.dtype.str) for name, array in arrays.items()))
        queue = self.queues.get(key)
        if queue is not None and queue.rows + rows > self.max_batch_size:
            self._flush(key)  # keep every call within max_batch_size rows
            queue = None
        if queue is None:
            queue = self.queues[key] = _Queue()
            queue.timer = loop.call_later(self.timeout_seconds, self._time_up, key)
        future = loop.create_future()
        queue.requests.append((arrays, rows, future))
        queue.rows += rows
        if queue.rows >= self.max_batch_size:
            self._flush(key)
        return await future

    def _time_up(self, key):
        queue = self.queues.get(key)
        if queue is None:
            return
        if self.running < self.threads:
            self._flush(key)
        else:  # every worker busy: keep filling until one is free (`_call_done`)
            queue.due = True

    def _flush(self, key):
        queue = self.queues.pop(key, None)
        if queue is None:
            return
        queue.timer.cancel()
        signature, requests = key[0], queue.requests
        name = signature.name
        self.calls[name] += 1
        self.requests[name] += len(requests)
        self.largest[name] = max(self.largest[name], len(requests))
        merged = {input_name: np.concatenate([arrays[input_name] for arrays, _, _ in requests])
                  for input_name in requests[0][0]}
        call = self._run(signature, merged)
        call.add_done_callback(lambda done: self._answer(signature, requests, done))

    def _run(self, signature, arrays):
        """The signature's call on a worker, counted in `running` until it ends."""
        self.running += 1
        call = asyncio.get_running_loop().run_in_executor(self.executor, signature, arrays)
        call.add_done_callback(self._call_done)
        return call

    def _call_done(self, _call):
        self.running -= 1
        due = next((key for key, queue in self.queues.items() if queue.due), None)  # the oldest queue first
        if due is not None:
            self._flush(due)

    def _answer(self, signature, requests, done):
        if done.exception() is not None:
            if len(requests) == 1:
                _settle(requests[0][2], exception=done.exception())
                return
            for arrays, _, future in requests:  # only the request the model refuses gets the error
                retry = self._run(signature, arrays)
                retry.add_done_callback(lambda attempt, future=future: _settle(
                    future, *((None, attempt.exception()) if attempt.exception() else (attempt.result(), None))))
            return
        outputs, start = done.result(), 0
        for _, rows, future in requests:
            _settle(future, {name: value[start:start + rows] for name, value in outputs.items()})
            start += rows

    def metrics(self):
        """Prometheus text: per signature, the calls and requests that went through the queues."""
        lines = ["# TYPE dlsuite_batched_requests_total counter", "# TYPE dlsuite_batch_calls_total counter",
                 "# TYPE dlsuite_batch_largest gauge"]
        for name in sorted(self.requests):
            lines += [f'dlsuite_batched_requests_total{{signature="{name}"}} {self.requests[name]}',
                      f'dlsuite_batch_calls_total{{signature="{name}"}} {self.calls[name]}',
                      f'dlsuite_batch_largest{{signature="{name}"}} {self.largest[name]}']
        return "\n".join(lines) + "\n"


def _rows(signature, arrays):
    """The request's number of rows if it may share a call with others, else None."""
    return len(next(iter(arrays.values()))) if signature.chunked else None


def _settle(future, result=None, exception=None):
    if future.done():  # the request's client went away and it was cancelled
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        future.set_result(result)
