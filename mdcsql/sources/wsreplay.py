"""A local websocket server that replays a cryptofeed capture file to every client that connects.

Used to test the live adapters (`coinbase`, `bitmex`) without a network.  A capture
(cryptofeed's ``sample_data/*.ws.*`` files) is text, one record a line::

    wss://ws-feed.pro.coinbase.com <-> 1618677816.8434298             the connection was opened
    wss://ws-feed.pro.coinbase.com <- 1618677817.020616: {"type":...}  a message the client sent
    1618677817.061845: {"type":"subscriptions",...}                    a message the client received

Semantics (see docs/sources-live.md):

* Each connection waits for the client's first message (its subscribe), then sends the capture's
  received messages in order, verbatim (the JSON text only; the epoch prefix, the original
  receive time, is **not** sent: a websocket frame carries only the exchange's text, so the
  adapter's ``recv_ts`` is its own receive time).
* ``speed=None`` sends as fast as possible; ``speed=x`` paces by the epoch prefixes at x × real time.
* **Every connection replays the capture from its start** (a fresh session: snapshot/partial
  first, as a real exchange sends after a (re)subscribe).  A client that reconnects therefore
  sees messages it already had; the adapters drop those duplicates (trade ids), rebuild their
  books from the new snapshot, and store every trade exactly once.
* ``drop_after=N`` aborts the first connection (TCP reset, no close frame) after N messages have
  been delivered; later connections are not dropped.
* ``skip_lines`` (1-based line numbers of the capture file) are never sent, on any connection:
  that creates sequence gaps.
* After the last message the connection stays open and quiet (like a live feed with no traffic)
  until the client or the server closes it; ``finished`` is set.  A text ``ping`` is answered
  with ``pong`` (BitMEX's keep-alive).
* Only loopback addresses are accepted for ``host``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed


@dataclass(frozen=True)
class CaptureLine:
    line_no: int        # 1-based line number in the capture file
    epoch: float        # the original receive (or send) time, seconds since the epoch
    text: str           # the message, verbatim


@dataclass
class Capture:
    url: str | None
    sent: list[CaptureLine]        # what the original client sent (its subscribe messages)
    received: list[CaptureLine]    # what the original client received, in order


def read_capture(path) -> Capture:
    """Parse a cryptofeed capture file; raises ValueError naming the line of a malformed record."""
    url = None
    sent: list[CaptureLine] = []
    received: list[CaptureLine] = []
    with open(path, encoding="utf-8") as f:
        for no, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            try:
                if line.startswith(("wss://", "ws://")):
                    head, sep, rest = line.partition(" <-> ")
                    if sep:
                        url = url or head
                        continue
                    head, sep, rest = line.partition(" <- ")
                    if not sep:
                        raise ValueError("neither '<->' nor '<-'")
                    epoch, _, text = rest.partition(": ")
                    sent.append(CaptureLine(no, float(epoch), text))
                else:
                    epoch, sep, text = line.partition(": ")
                    if not sep:
                        raise ValueError("no 'epoch: ' prefix")
                    received.append(CaptureLine(no, float(epoch), text))
            except ValueError as exc:
                raise ValueError(f"{path}:{no}: not a capture record ({exc}): {line[:80]!r}") from None
    return Capture(url, sent, received)


def _check_loopback(host: str) -> None:
    if host == "localhost":
        return
    try:
        ok = ipaddress.ip_address(host).is_loopback
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"the replay server listens on loopback addresses only, not {host!r}")


class ReplayServer:
    """Replays `capture_path` to each websocket client; use as a context manager or start()/stop().

    Attributes for tests: ``url``, ``capture``, ``connections`` (count), ``client_messages``
    (per connection, the text messages the client sent), ``delivered`` (per connection, messages
    sent), ``finished`` (threading.Event, set when a connection has sent the whole capture).
    """

    def __init__(self, capture_path, *, host: str = "127.0.0.1", port: int = 0, speed: float | None = None,
                 drop_after: int | None = None, skip_lines: set[int] | None = None,
                 subscribe_timeout: float = 10.0) -> None:
        _check_loopback(host)
        if speed is not None and speed <= 0:
            raise ValueError("speed must be positive (or None for as fast as possible)")
        if drop_after is not None and drop_after < 0:
            raise ValueError("drop_after must be >= 0")
        self.capture_path = Path(capture_path)
        self.capture = read_capture(self.capture_path)
        self.host, self.port = host, port
        self.speed = speed
        self.drop_after = drop_after
        self.skip_lines = frozenset(skip_lines or ())
        self.subscribe_timeout = subscribe_timeout
        self.connections = 0
        self.client_messages: list[list[str]] = []
        self.delivered: list[int] = []
        self.finished = threading.Event()
        self._dropped = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._closing: asyncio.Event | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the replay server is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}"

    def start(self) -> "ReplayServer":
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._run, name="mdcsql-wsreplay", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._startup_error is not None:
            raise self._startup_error
        if self._server is None:
            raise RuntimeError("the replay server did not start within 10 s")
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if loop.is_running() and self._closing is not None:
            loop.call_soon_threadsafe(self._closing.set)
        thread.join(10)
        self._thread = None

    def __enter__(self) -> "ReplayServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:            # reported to start() when it happens at startup
            if not self._ready.is_set():
                self._startup_error = exc
        finally:
            self._ready.set()
            loop.close()

    async def _main(self) -> None:
        self._closing = asyncio.Event()
        async with serve(self._handler, self.host, self.port, max_size=None) as server:
            self._server = server
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._closing.wait()
            server.close(close_connections=True)
            await server.wait_closed()

    # ------------------------------------------------------------------ one connection
    async def _handler(self, ws) -> None:
        self.connections += 1
        received: list[str] = []
        self.client_messages.append(received)
        index = len(self.delivered)
        self.delivered.append(0)
        try:
            first = await asyncio.wait_for(ws.recv(), self.subscribe_timeout)
        except (TimeoutError, asyncio.TimeoutError, ConnectionClosed):
            return
        received.append(first if isinstance(first, str) else first.decode("utf-8", "replace"))
        reader = asyncio.create_task(self._read_client(ws, received))
        drop = None if self._dropped else self.drop_after
        try:
            await self._send_capture(ws, index, drop)
            await ws.wait_closed()
        except ConnectionClosed:
            pass
        finally:
            reader.cancel()

    async def _read_client(self, ws, received: list[str]) -> None:
        try:
            async for msg in ws:
                text = msg if isinstance(msg, str) else msg.decode("utf-8", "replace")
                received.append(text)
                if text == "ping":
                    await ws.send("pong")
        except ConnectionClosed:
            pass

    async def _send_capture(self, ws, index: int, drop: int | None) -> None:
        loop = asyncio.get_running_loop()
        messages = self.capture.received
        t0 = loop.time()
        e0 = messages[0].epoch if messages else 0.0
        n = 0
        for m in messages:
            if m.line_no in self.skip_lines:
                continue
            if drop is not None and n >= drop:
                await self._abort(ws)
                return
            if self.speed:
                delay = t0 + (m.epoch - e0) / self.speed - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            await ws.send(m.text)
            n += 1
            self.delivered[index] = n
        if drop is not None and n >= drop:
            await self._abort(ws)
            return
        self.finished.set()

    async def _abort(self, ws) -> None:
        """Drop the TCP connection without a close frame, after what was sent has left the buffer."""
        self._dropped = True
        transport = ws.transport
        deadline = time.monotonic() + 5
        while transport.get_write_buffer_size() and time.monotonic() < deadline:
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.05)          # let the kernel hand the bytes to the client
        transport.abort()
