"""AIClient: asyncio client of `aitw serve`, the same client as clients/node (the seed's ai-client.ts).

Window 1: one frame in flight; a newer frame replaces one still waiting (latest wins, counted as a drop).
Reconnects with exponential backoff and jitter, moving along the endpoint list, and re-Inits by itself; a
worker that is draining (Error 13, End "draining" / "max_session_age") is left at once for the next
endpoint. Heartbeats go out every third of the timeout; a worker silent for the whole timeout is dropped.
All state lives on the event loop the client was connected from; no method blocks.
"""
import asyncio
import bisect
import random
import re
import socket
import time

from .framing import encode_framed, read_message
from .proto import pb

# Protocol error codes (net/include/aitw/net/server.hpp).
ERR_MODEL = 7
ERR_AUTH = 12
ERR_DRAINING = 13
# End reasons after which a client goes elsewhere at once.
MOVE_ON_REASONS = {"draining", "max_session_age"}
FORMATS = {"JPEG": pb.JPEG, "RGB8": pb.RGB8, "BGR8": pb.BGR8, None: pb.PIXEL_FORMAT_UNSPECIFIED}


class AIError(Exception):
    """An Error from the worker (code 0: raised by the client itself, e.g. a silent worker)."""

    def __init__(self, code, message, fatal=False):
        super().__init__(message)
        self.code, self.message, self.fatal = code, message, fatal

    def __repr__(self):
        return f"AIError(code={self.code}, message={self.message!r}, fatal={self.fatal})"


def parse_endpoint(s):
    m = re.fullmatch(r"(?:\[([^\]]+)\]|([^:]+)):(\d+)", s)
    if not m or not 1 <= int(m.group(3)) <= 65535:
        raise ValueError(f"endpoint '{s}': expected HOST:PORT with a port 1-65535")
    return (m.group(1) or m.group(2), int(m.group(3)))


class Backoff:
    """As base/backoff.hpp: each delay drawn from [d/2, d], d doubling from `initial` up to `maximum`."""

    def __init__(self, initial, maximum):
        self.initial, self.maximum, self.bound = initial, maximum, initial

    def next(self):
        d = self.bound
        self.bound = min(self.maximum, self.bound * 2)
        return d / 2 + random.random() * d / 2

    def reset(self):
        self.bound = self.initial


class LatencyWindow:
    """ai_result_latency_ms: count, sum and max of all results; percentiles over the latest `capacity`."""

    def __init__(self, capacity=4096):
        self.capacity, self.samples, self.next_slot = capacity, [], 0
        self.count, self.sum, self.max = 0, 0.0, 0.0

    def record(self, ms):
        if len(self.samples) < self.capacity:
            self.samples.append(ms)
        else:
            self.samples[self.next_slot] = ms
        self.next_slot = (self.next_slot + 1) % self.capacity
        self.count += 1
        self.sum += ms
        self.max = max(self.max, ms)

    def summary(self):
        s = sorted(self.samples)

        def at(q):
            return s[min(len(s) - 1, int(q * len(s)))] if s else 0.0

        return {"count": self.count, "sum": self.sum, "max": self.max, "p50": at(0.5), "p95": at(0.95),
                "p99": at(0.99)}


class AIClient:
    def __init__(self, host=None, port=None, endpoints=None, heartbeat_timeout=10.0, backoff_initial=0.1,
                 backoff_max=5.0, connect_timeout=5.0):
        if endpoints:
            eps = [parse_endpoint(e) for e in endpoints]
        elif port is not None:
            if not isinstance(port, int) or not 1 <= port <= 65535:
                raise ValueError(f"AIClient: port {port!r} is not 1-65535")
            eps = [(host or "127.0.0.1", port)]
        else:
            raise ValueError("AIClient: give host and port, or endpoints=['host:port', ...]")
        self._endpoints = [{"host": h, "port": p, "backoff": Backoff(backoff_initial, backoff_max)} for h, p in eps]
        self._index = 0
        self._heartbeat_timeout = heartbeat_timeout
        self._connect_timeout = connect_timeout

        self._writer = None
        self._run_task = None
        self._running = False
        self._ever_connected = False
        self._connected = None  # asyncio.Event, made on the loop
        self._wake = None  # set to retry at once (init() after a refused token)
        self._move_on = False
        self._refused = False

        self._init_args = None
        self._init_wanted = False
        self._awaiting_init_ok = False
        self._initialized = False
        self._ready = False
        self._inflight = None  # (frame_id, submitted_ns)
        self._pending = None  # (pb.Frame, submitted_ns)
        self._next_frame_id = 1
        self._init_waiters = []
        self._result_callbacks = []
        self._error_callbacks = []
        self.last_init_ok = None

        self._counters = dict(ai_init_ok_total=0, ai_reconnects_total=0, ai_frames_sent_total=0,
                              ai_drops_latestwins_total=0, ai_detections_total=0, results_total=0, errors_total=0,
                              frames_lost_on_disconnect=0)
        self._latency = LatencyWindow()

    # --- the seed's interface ------------------------------------------------------------------------------

    async def connect(self):
        """Starts connecting (and reconnecting until shutdown()); returns once connected."""
        if self._connected is None:
            self._connected = asyncio.Event()
            self._wake = asyncio.Event()
        if not self._running:
            self._running = True
            self._run_task = asyncio.get_running_loop().create_task(self._run())
        await self._connected.wait()

    async def init(self, model="", conf=0.0, iou=0.0, max_det=0, classes=(), width=0, height=0, format=None,
                   client_id="", auth_token=""):
        """Sends Init now (with a frame in flight: right after its Result, as the worker refuses an Init
        then) and after every reconnect. Returns the InitOk; raises AIError when the worker refuses the
        model (7) or the token (12)."""
        if format not in FORMATS:
            raise ValueError(f"format {format!r}: expected 'JPEG', 'RGB8' or 'BGR8'")
        m = pb.Init(model=model, width=width, height=height, format=FORMATS[format], client_id=client_id,
                    auth_token=auth_token)
        m.thresholds.conf, m.thresholds.iou, m.thresholds.max_det = conf, iou, max_det
        m.thresholds.classes.extend(classes)
        self._init_args = m
        self._init_wanted = True
        if self._refused:
            self._refused = False
            self._wake.set()
        fut = asyncio.get_running_loop().create_future()
        self._init_waiters.append(fut)
        self._send_init_if_due()
        return await fut

    def can_send(self):
        """True when a frame given now would go out at once."""
        return self._initialized and self._ready and not self._awaiting_init_ok and not self._inflight \
            and not self._pending

    def send_frame(self, pixels, width=0, height=0, format=None, ts_mono_ns=None):
        """Never blocks; returns the frame id. A frame that cannot go out now waits, replacing an older
        waiting one (counted in ai_drops_latestwins_total), across reconnects too."""
        if format not in FORMATS:
            raise ValueError(f"format {format!r}: expected 'JPEG', 'RGB8' or 'BGR8'")
        fid = self._next_frame_id
        self._next_frame_id += 1
        now = time.monotonic_ns()
        f = pb.Frame(frame_id=fid, ts_mono_ns=now if ts_mono_ns is None else ts_mono_ns, width=width,
                     height=height, format=FORMATS[format], pixels=bytes(pixels))
        if self._pending is not None:
            self._counters["ai_drops_latestwins_total"] += 1
        self._pending = (f, now)
        self._send_frame_if_due()
        return fid

    def on_result(self, cb):
        """cb(result: dict) per Result: frame_id, ts_mono_ns, detections (class_id, score, x1..y2), times,
        latency_ms (send_frame -> Result). Returns a function that unsubscribes."""
        self._result_callbacks.append(cb)
        return lambda: self._result_callbacks.remove(cb)

    def on_error(self, cb):
        """cb(AIError) per Error from the worker or connection problem. Returns an unsubscribe function."""
        self._error_callbacks.append(cb)
        return lambda: self._error_callbacks.remove(cb)

    async def shutdown(self):
        """Sends End, closes, stops reconnecting; pending init() calls raise."""
        self._running = False
        w = self._writer
        if w is not None:
            try:
                w.write(encode_framed(pb.Envelope(end=pb.End(reason="client shutdown"))))
                await asyncio.wait_for(w.drain(), 1.0)
            except (OSError, asyncio.TimeoutError):
                pass
        if self._run_task is not None:
            self._run_task.cancel()
            try:
                await self._run_task
            except asyncio.CancelledError:
                pass
        self._drop_connection()
        for fut in self._init_waiters:
            if not fut.done():
                fut.set_exception(AIError(0, "AIClient shut down"))
        self._init_waiters.clear()

    def stats(self):
        e = self._endpoints[self._index]
        return dict(self._counters, ai_frame_inflight=1 if self._inflight else 0,
                    ai_result_latency_ms=self._latency.summary(), endpoint=f"{e['host']}:{e['port']}",
                    connected=self._writer is not None)

    # --- connection lifecycle ------------------------------------------------------------------------------

    async def _run(self):
        while self._running:
            ep = self._endpoints[self._index]
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(ep["host"], ep["port"]),
                                                        self._connect_timeout)
            except (OSError, asyncio.TimeoutError):
                await self._next_endpoint()
                continue
            self._on_connected(ep, writer)
            try:
                await self._session(reader)
            except (OSError, asyncio.IncompleteReadError):
                pass  # the worker went away: reconnect
            except Exception as e:  # noqa: BLE001 - the stream is out of step, or a callback raised
                self._emit_error(AIError(0, f"connection to {ep['host']}:{ep['port']}: {e}"))
            finally:
                self._drop_connection()
            await self._next_endpoint()

    async def _next_endpoint(self):
        """A draining worker: the next endpoint now, with a fresh backoff. A failure: the next endpoint
        after its own backoff delay. A refused token: wait for init() with another one."""
        if self._refused:
            self._wake.clear()
            await self._wake.wait()
        self._index = (self._index + 1) % len(self._endpoints)
        ep = self._endpoints[self._index]
        if self._move_on:
            ep["backoff"].reset()
            self._move_on = False
            return
        await asyncio.sleep(ep["backoff"].next())

    def _on_connected(self, ep, writer):
        ep["backoff"].reset()
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._ever_connected:
            self._counters["ai_reconnects_total"] += 1
        self._ever_connected = True
        self._writer = writer
        self._connected.set()
        if self._init_args is not None:
            self._init_wanted = True  # re-Init on every (re)connect
        self._send_init_if_due()

    async def _session(self, reader):
        last_rx = [time.monotonic()]
        beat = max(0.1, self._heartbeat_timeout / 3)

        async def heartbeats():
            while True:
                await asyncio.sleep(beat)
                if time.monotonic() - last_rx[0] > self._heartbeat_timeout:
                    self._emit_error(AIError(0, f"worker silent for {self._heartbeat_timeout} s: reconnecting"))
                    return
                self._write(pb.Envelope(heartbeat=pb.Heartbeat(ts_mono_ns=time.monotonic_ns())))

        async def messages():
            while True:
                body = await read_message(reader)
                last_rx[0] = time.monotonic()
                e = pb.Envelope()
                try:
                    e.ParseFromString(body)
                except Exception:  # noqa: BLE001 - protobuf's DecodeError; skip it, the stream is in step
                    continue
                if not self._handle(e):
                    return

        hb = asyncio.ensure_future(heartbeats())
        rx = asyncio.ensure_future(messages())
        try:
            done, _ = await asyncio.wait({hb, rx}, return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                t.result()  # re-raises what ended the session
        finally:
            hb.cancel()
            rx.cancel()

    def _drop_connection(self):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            if self._connected is not None:
                self._connected.clear()
        if self._inflight is not None:
            self._counters["frames_lost_on_disconnect"] += 1  # its Result will never come
        self._inflight = None
        self._initialized = self._ready = self._awaiting_init_ok = False

    def _write(self, envelope):
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(encode_framed(envelope))

    # --- protocol ------------------------------------------------------------------------------------------

    def _send_init_if_due(self):
        if not self._init_wanted or self._init_args is None or self._writer is None or self._inflight:
            return
        self._init_wanted = False
        # Frames wait until the InitOk; a Ready in hand stays valid (another follows the InitOk, and none
        # follows a refused Init).
        self._awaiting_init_ok = True
        self._write(pb.Envelope(init=self._init_args))

    def _send_frame_if_due(self):
        if self._pending is None or not self._initialized or not self._ready or self._awaiting_init_ok \
                or self._inflight:
            return
        f, submitted = self._pending
        self._pending = None
        self._ready = False
        self._inflight = (f.frame_id, submitted)
        self._counters["ai_frames_sent_total"] += 1
        self._write(pb.Envelope(frame=f))

    def _frame_done(self):
        self._inflight = None
        self._send_init_if_due()  # a hot reload waits for the frame in flight

    def _handle(self, e):
        """Acts on one message; False ends this connection."""
        kind = e.WhichOneof("msg")
        if kind == "init_ok":
            self._awaiting_init_ok = False
            self._initialized = True
            self._counters["ai_init_ok_total"] += 1
            self.last_init_ok = e.init_ok
            for fut in self._init_waiters:
                if not fut.done():
                    fut.set_result(e.init_ok)
            self._init_waiters.clear()
        elif kind == "ready":
            self._ready = True
            self._send_frame_if_due()
        elif kind == "result":
            self._on_result_message(e.result)
        elif kind == "error":
            return self._on_error_message(e.error)
        elif kind == "end":
            self._move_on = e.end.reason in MOVE_ON_REASONS
            return False
        return True

    def _on_result_message(self, r):
        latency = (time.monotonic_ns() - self._inflight[1]) / 1e6 if self._inflight else 0.0
        dets = [dict(class_id=d.class_id, score=d.score, x1=d.x1, y1=d.y1, x2=d.x2, y2=d.y2) for d in r.detections]
        self._counters["results_total"] += 1
        self._counters["ai_detections_total"] += len(dets)
        self._latency.record(latency)
        t = r.times
        result = dict(frame_id=r.frame_id, ts_mono_ns=r.ts_mono_ns, detections=dets, latency_ms=latency,
                      times=dict(decode_ms=t.decode_ms, preprocess_ms=t.preprocess_ms, queue_ms=t.queue_ms,
                                 infer_ms=t.infer_ms, postprocess_ms=t.postprocess_ms))
        self._frame_done()
        for cb in list(self._result_callbacks):
            cb(result)

    def _on_error_message(self, m):
        err = AIError(m.code, m.message, m.fatal)
        self._counters["errors_total"] += 1
        self._emit_error(err)
        if err.code == ERR_DRAINING:
            self._move_on = True  # the Init goes to the next endpoint; init() keeps waiting
            return False
        if self._awaiting_init_ok and err.code in (ERR_MODEL, ERR_AUTH):
            # The answer to our Init: the same arguments would get the same answer. The session keeps its
            # previous model, if it had one.
            self._awaiting_init_ok = False
            if err.code == ERR_AUTH:
                self._refused = True  # fatal: the worker closes; do not hammer it
            for fut in self._init_waiters:
                if not fut.done():
                    fut.set_exception(err)
            self._init_waiters.clear()
            self._send_frame_if_due()
            return True
        if self._inflight and not err.fatal:
            self._frame_done()  # a non-fatal error about the frame in flight ends it (a Ready follows)
        return True

    def _emit_error(self, err):
        for cb in list(self._error_callbacks):
            cb(err)
