"""The shared failover contract against small fake workers on loopback (main's `aitw serve` does not drain
yet): Error 13 answering an Init, End "draining" / "max_session_age" after a Result, a silent worker and
a refused connection all move the client to the next endpoint, where it re-Inits."""
import asyncio
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

from aitw_client import AIClient, encode_framed, pb  # noqa: E402
from aitw_client.framing import read_message  # noqa: E402
from worker import until  # noqa: E402


def serving(e, reply):
    """Answers like a worker: InitOk + Ready, a Result + Ready per Frame, heartbeats echoed."""
    kind = e.WhichOneof("msg")
    if kind == "init":
        reply(pb.Envelope(init_ok=pb.InitOk(model_id="b" * 64, class_names=["person"])))
        reply(pb.Envelope(ready=pb.Ready()))
    elif kind == "frame":
        r = pb.Result(frame_id=e.frame.frame_id, ts_mono_ns=e.frame.ts_mono_ns)
        r.detections.add(class_id=0, score=0.9)
        reply(pb.Envelope(result=r))
        reply(pb.Envelope(ready=pb.Ready()))
    elif kind == "heartbeat":
        reply(pb.Envelope(heartbeat=pb.Heartbeat(ts_mono_ns=e.heartbeat.ts_mono_ns)))


class FakeWorker:
    """behave(envelope, reply) answers each message; `got` records the kinds received."""

    def __init__(self, behave):
        self.behave, self.got, self.server = behave, [], None

    async def start(self):
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        self.endpoint = f"127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def serve(self, reader, writer):
        try:
            while True:
                e = pb.Envelope()
                e.ParseFromString(await read_message(reader))
                self.got.append(e.WhichOneof("msg"))
                self.behave(e, lambda m: writer.write(encode_framed(m)))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def close(self):
        self.server.close()
        await self.server.wait_closed()


class Failover(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        self.clients, self.fakes = [], []

    async def asyncTearDown(self):
        for c in self.clients:
            await c.shutdown()
        for f in self.fakes:
            await f.close()

    async def fake(self, behave):
        f = await FakeWorker(behave).start()
        self.fakes.append(f)
        return f

    def client(self, endpoints, **kw):
        # A long backoff: a move that waited for it would not finish within the test's patience.
        kw.setdefault("backoff_initial", 60.0)
        kw.setdefault("backoff_max", 60.0)
        c = AIClient(endpoints=endpoints, **kw)
        self.clients.append(c)
        return c

    async def test_error_13_on_init_moves_on_at_once(self):
        def draining(e, reply):
            if e.WhichOneof("msg") == "init":
                reply(pb.Envelope(error=pb.Error(code=13, message="draining: worker is shutting down")))

        a, b = await self.fake(draining), await self.fake(serving)
        c = self.client([a.endpoint, b.endpoint])
        errors = []
        c.on_error(errors.append)
        await c.connect()
        ok = await asyncio.wait_for(c.init(model="yolo11n"), 30)
        self.assertEqual(ok.model_id, "b" * 64)
        self.assertEqual([e.code for e in errors], [13])
        self.assertEqual(c.stats()["endpoint"], b.endpoint)
        self.assertEqual(c.stats()["ai_reconnects_total"], 1)
        self.assertEqual(b.got, ["init"])

    async def test_end_after_result_moves_on_at_once(self):
        for reason in ("draining", "max_session_age"):
            with self.subTest(reason=reason):
                def ending(e, reply):
                    serving(e, reply)
                    if e.WhichOneof("msg") == "frame":
                        reply(pb.Envelope(end=pb.End(reason=reason)))

                a, b = await self.fake(ending), await self.fake(serving)
                c = self.client([a.endpoint, b.endpoint])
                results = []
                c.on_result(results.append)
                await c.connect()
                await c.init(model="yolo11n")
                await until(c.can_send, "Ready")
                c.send_frame(b"\x01\x02\x03")
                await until(lambda: len(results) == 1, "the Result of the ending worker")
                await until(lambda: c.stats()["endpoint"] == b.endpoint and c.stats()["ai_init_ok_total"] == 2,
                            "re-Init elsewhere")
                c.send_frame(b"\x04")
                await until(lambda: len(results) == 2, "a Result from the next worker")
                self.assertEqual([m for m in b.got if m != "heartbeat"], ["init", "frame"])
                self.assertEqual(c.stats()["frames_lost_on_disconnect"], 0)

    async def test_silent_worker_dropped_after_heartbeat_timeout(self):
        def silent(e, reply):
            if e.WhichOneof("msg") == "init":
                reply(pb.Envelope(init_ok=pb.InitOk(model_id="a" * 64)))
                reply(pb.Envelope(ready=pb.Ready()))

        a, b = await self.fake(silent), await self.fake(serving)
        c = self.client([a.endpoint, b.endpoint], heartbeat_timeout=0.3, backoff_initial=0.01, backoff_max=0.02)
        errors = []
        c.on_error(errors.append)
        await c.connect()
        await c.init(model="yolo11n")
        await until(c.can_send, "Ready")
        c.send_frame(b"\x01")
        await until(lambda: c.stats()["endpoint"] == b.endpoint and c.stats()["ai_init_ok_total"] == 2, "the move")
        self.assertTrue(any("silent for 0.3 s" in e.message for e in errors))
        self.assertEqual(c.stats()["frames_lost_on_disconnect"], 1)
        self.assertIn("heartbeat", a.got)

    async def test_refused_connection_tries_the_next_endpoint(self):
        dead = await self.fake(serving)
        dead_endpoint = dead.endpoint
        await dead.close()
        self.fakes.remove(dead)
        b = await self.fake(serving)
        c = self.client([dead_endpoint, b.endpoint], backoff_initial=0.01, backoff_max=0.02)
        await asyncio.wait_for(c.connect(), 30)
        self.assertEqual(c.stats()["endpoint"], b.endpoint)
        self.assertEqual(c.stats()["ai_reconnects_total"], 0)  # never connected before
        await c.init(model="yolo11n")


if __name__ == "__main__":
    unittest.main()
