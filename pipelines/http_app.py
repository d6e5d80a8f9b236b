"""The HTTP side of `dlsuite serve`: a Starlette app on uvicorn, with TF Serving's JSON errors and bounded memory.

Every answer that is not a success is TF Serving's `{"error": ...}` in JSON, whoever gives it:
the app (404, 405, 408, 411, 413, 503), or uvicorn's HTTP parser (h11) before the app sees a request
(`JsonErrorsProtocol`: a malformed request line or headers get 400, a request head that grows past
HEAD_BYTES before it is complete 431, a client that sends part of a request head and stalls 408).
A complete head is checked by the app: over HEAD_BYTES or MAX_HEADERS fields 431, a target over MAX_TARGET 414.

Memory is bounded by design: a body is streamed in chunks into a buffer that grows as bytes arrive
(never the declared Content-Length up front); the bodies in flight, from their first byte until their
answer, share a budget of one `--max-body-mb` in declared bytes (the others wait their turn, up to
QUEUE_SECONDS, then 503); connections are capped (`--max-connections`, beyond it 503); once read, a
body has `--read-timeout` seconds to arrive (408).
"""

import asyncio
import collections
import contextlib
import json
import re
import socket

import h11
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import Route
from uvicorn.protocols.http.h11_impl import H11Protocol

from pipelines.rest import RequestError, preview

# TF Serving's REST paths
ROUTE = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?(?P<verb>:predict|/metadata)?$")
MIB = 1 << 20
QUEUE_SECONDS = 60  # longest a request body waits for the budget before 503
MAX_HEADERS = 100  # header fields of a request, beyond them 431
MAX_TARGET = 2048  # longest request target (path and query), beyond it 414
HEAD_BYTES = 16 << 10  # request line and headers: h11's limit on an incomplete event
METRICS_PATH = "/monitoring/prometheus/metrics"  # where TF Serving's monitoring answers


def json_error(status, message, **headers):
    return Response(json.dumps({"error": message}), status, headers=headers, media_type="application/json")


class ByteBudget:
    """A semaphore counted in bytes: the request bodies (and what is parsed from them) held at once.
    It lives on the event loop, so it needs no lock."""

    def __init__(self, total):
        self.total, self.free = total, total
        self.waiters = collections.deque()

    async def acquire(self, amount):
        while self.free < amount:
            waiter = asyncio.get_running_loop().create_future()
            self.waiters.append(waiter)
            try:
                await waiter
            finally:
                self.waiters.remove(waiter)
        self.free -= amount

    def release(self, amount):
        self.free += amount
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(None)


def build_app(model, batcher, max_body_bytes=32 * MIB, read_timeout=30.0):
    """The Starlette app: one route that parses TF Serving's paths itself, so that every error is its JSON."""
    budget = ByteBudget(max_body_bytes)

    async def endpoint(request):
        target = request.scope["raw_path"].decode("latin-1")
        if request.scope["query_string"]:
            target += "?" + request.scope["query_string"].decode("latin-1")
        if target == METRICS_PATH:
            return (Response(batcher.metrics(), media_type="text/plain; version=0.0.4") if request.method == "GET"
                    else _not_allowed(request.method, target, "GET"))
        if len(target) > MAX_TARGET:
            return json_error(414, f"Request URL too long. Received: {len(target)} characters. Expected at most "
                                   f"{MAX_TARGET}, such as /v1/models/{model.name}:predict.")
        if sum(len(name) + len(value) for name, value in request.headers.raw) > HEAD_BYTES:
            return json_error(431, f"Request header fields too large. Expected at most {HEAD_BYTES} bytes of request "
                                   "line and headers.")
        if len(request.headers.raw) > MAX_HEADERS:
            return json_error(431, f"Request header fields too large. Received: {len(request.headers.raw)} header "
                                   f"fields. Expected at most {MAX_HEADERS}.")
        match = ROUTE.match(target)
        if not match or match["name"] != model.name:
            return json_error(404, f"Unknown path {preview(target)}. Expected "
                                   f"/v1/models/{model.name}[/versions/N][:predict|/metadata].")
        allowed = "POST" if match["verb"] == ":predict" else "GET"
        if request.method != allowed:
            return _not_allowed(request.method, target, allowed)
        try:
            if allowed == "GET":
                payload = json.dumps((model.metadata if match["verb"] else model.status)(match["version"])).encode()
            else:
                payload = await _predict(request, match["version"])
        except RequestError as error:
            return json_error(error.status, str(error), **error.headers)
        except Exception as error:  # noqa: BLE001 - a failing request must not stop the server
            return json_error(500, " ".join(f"{type(error).__name__}: {error}".split())[:300])
        return Response(payload, media_type="application/json")  # JSON bytes

    async def _predict(request, version):
        length = _content_length(request, max_body_bytes)
        try:  # the client waits for the server here, so --read-timeout has not started yet
            async with asyncio.timeout(QUEUE_SECONDS):
                await budget.acquire(length)
        except TimeoutError:
            raise RequestError(f"The server is busy with other large request bodies (at most {budget.total} bytes at "
                               f"once). Received: Content-Length {length}. Expected to start within {QUEUE_SECONDS} s. "
                               "Retry later.", 503, Connection="close") from None
        deadline = asyncio.get_running_loop().time() + read_timeout
        try:
            received = await _read_body(request, deadline)
            if len(received) < length:
                raise RequestError(f"The request body did not arrive in time. Received: {len(received)} of {length} "
                                   f"bytes in --read-timeout {read_timeout:g} s. Expected the whole body.", 408,
                                   Connection="close")
            return await model.predict(received, version, batcher)
        except ClientDisconnect:
            raise RequestError("The client closed the connection before sending the whole body.") from None
        finally:
            budget.release(length)

    async def _http_error(request, error):  # Starlette's own 404/405, e.g. for a request target without "/"
        return json_error(error.status_code, f"{error.detail}. Received: {request.method} "
                                             f"{preview(request.scope['path'])}.")

    async def _server_error(request, error):
        return json_error(500, " ".join(f"{type(error).__name__}: {error}".split())[:300])

    return Starlette(routes=[Route("/{path:path}", endpoint, methods=["GET", "HEAD", "POST", "PUT", "DELETE",
                                                                       "OPTIONS", "PATCH", "TRACE", "CONNECT"])],
                     exception_handlers={HTTPException: _http_error, Exception: _server_error})


async def _read_body(request, deadline):
    """What arrives of the body by `deadline`, in a buffer that grows with it: a declared size costs nothing
    until its bytes arrive."""
    loop, received, reading = asyncio.get_running_loop(), bytearray(), [True]
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(None) as timeout:

            def expire():  # one more turn of the event loop first: bytes that arrived while a long request held
                if reading[0]:  # the loop (json.loads keeps the GIL) are taken before giving up; they were in time
                    timeout.reschedule(loop.time())

            handle = loop.call_at(deadline, loop.call_soon, expire)
            try:
                async for chunk in request.stream():
                    received += chunk
            finally:
                reading[0] = False
                handle.cancel()
    return received


def _not_allowed(method, target, allowed):
    return json_error(405, f"{method} is not allowed on {preview(target)}. Expected {allowed}.", Allow=allowed)


def _content_length(request, max_body_bytes):
    """The declared body size; RequestError 411, 400 or 413 otherwise (the body is left unread)."""
    text = request.headers.get("content-length")
    if text is None or "chunked" in request.headers.get("transfer-encoding", "").lower():
        raise RequestError("A request body needs a Content-Length header. Received: none.", status=411,
                           Connection="close")
    if not (text.isascii() and text.isdigit()):
        raise RequestError(f"Invalid Content-Length. Received: {preview(text)}.", Connection="close")
    if len(text) > 15 or int(text) > max_body_bytes:
        raise RequestError(f"Request body too large. Received: Content-Length {text} bytes. Expected at most "
                           f"{max_body_bytes} (--max-body-mb {max_body_bytes / MIB:g}). Split the batch into several "
                           "requests, or restart serve with a larger --max-body-mb.", status=413, Connection="close")
    return int(text)


def json_errors_protocol(read_timeout, max_connections):
    """uvicorn's h11 protocol with TF Serving's JSON errors, a deadline on request heads and a connection cap."""

    class JsonErrorsProtocol(H11Protocol):
        head_timer = parse_error = None

        def connection_made(self, transport):
            super().connection_made(transport)
            # h11 writes the head and the body of an answer apart; without TCP_NODELAY the kernel holds the body
            # until the client acknowledges the head, which it delays by 40 ms. asyncio sets it only on sockets
            # made with proto=IPPROTO_TCP, and socket.create_server's (proto 0) and theirs accepted are not.
            connection = transport.get_extra_info("socket")
            if connection is not None and connection.family in (socket.AF_INET, socket.AF_INET6):
                connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.conn.next_event = self._next_event  # keeps h11's error for send_400_response
            if len(self.connections) > max_connections:
                self._write_error(503, f"Too many connections. Received: more than --max-connections "
                                       f"{max_connections}. Retry later.")
                return
            self._arm_head_timer()

        def data_received(self, data):
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE and self.head_timer is not None:
                self.head_timer.cancel()  # the request head arrived: the app's --read-timeout takes over
                self.head_timer = None

        def on_response_complete(self):
            super().on_response_complete()
            self._arm_head_timer()  # the next request on this keep-alive connection

        def connection_lost(self, exc):
            if self.head_timer is not None:
                self.head_timer.cancel()
            super().connection_lost(exc)

        def _arm_head_timer(self):
            if self.head_timer is not None:
                self.head_timer.cancel()
            self.head_timer = self.loop.call_later(read_timeout, self._head_timed_out)

        def _head_timed_out(self):
            if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
                return
            if self.conn.trailing_data[0]:  # part of a request head, then nothing
                self._write_error(408, f"The request head did not arrive in time. Expected it within "
                                       f"--read-timeout {read_timeout:g} s.")
            else:  # an idle connection: closed quietly, as uvicorn does after its keep-alive timeout
                self.transport.close()

        def _next_event(self):
            try:
                return h11.Connection.next_event(self.conn)
            except h11.RemoteProtocolError as error:
                self.parse_error = error  # for send_400_response, which uvicorn calls without it
                raise

        def send_400_response(self, msg):
            error = self.parse_error
            if error is not None and error.error_status_hint == 431:
                self._write_error(431, f"Request header fields too large. Expected at most {HEAD_BYTES} bytes of "
                                       "request line and headers.")
            else:
                detail = f" ({' '.join(str(error).split())[:100]})" if error is not None else ""
                self._write_error(400, f"Invalid HTTP request{detail}. Expected an HTTP/1.1 request such as "
                                       "POST /v1/models/NAME:predict.")

        def _write_error(self, status, message):
            """Answer outside h11's state machine (it has no request to answer) and close the connection."""
            body = json.dumps({"error": message}).encode()
            reason = {400: "Bad Request", 408: "Request Timeout", 431: "Request Header Fields Too Large",
                      503: "Service Unavailable"}[status]
            self.transport.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: "
                                 f"{len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
            self.transport.close()

    return JsonErrorsProtocol
