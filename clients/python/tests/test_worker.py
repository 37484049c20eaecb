"""AIClient against a real `aitw serve` (one per suite, with an auth token): handshake, results, latest-wins
drop accounting, hot reload, refusals, and a worker restart (reconnect + re-Init)."""
import asyncio
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

from aitw_client import AIClient, AIError  # noqa: E402
from worker import BUS_JPG, Worker, until  # noqa: E402

TOKEN = "python-client-test-token"
worker = None


def setUpModule():
    global worker
    worker = Worker(auth_token=TOKEN).start()


def tearDownModule():
    worker.cleanup()


class WorkerSuite(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        self.clients = []

    async def asyncTearDown(self):
        for c in self.clients:
            await c.shutdown()

    def client(self, **kw):
        c = AIClient(host="127.0.0.1", port=worker.port, backoff_initial=0.05, backoff_max=0.4, **kw)
        self.clients.append(c)
        return c

    async def test_handshake(self):
        c = self.client()
        await c.connect()
        self.assertFalse(c.can_send())
        ok = await c.init(model="yolo11n", conf=0.25, iou=0.45, format="JPEG", client_id="py-test", auth_token=TOKEN)
        self.assertRegex(ok.model_id, r"^[0-9a-f]{64}$")
        self.assertEqual(len(ok.class_names), 80)
        self.assertEqual(ok.class_names[0], "person")
        self.assertGreater(ok.input_width, 0)
        await until(c.can_send, "the first Ready")
        self.assertEqual(c.stats()["ai_init_ok_total"], 1)

    async def test_results(self):
        c = self.client()
        results = []
        c.on_result(results.append)
        await c.connect()
        await c.init(model="yolo11n", conf=0.25, format="JPEG", auth_token=TOKEN)
        fid = c.send_frame(BUS_JPG, format="JPEG", ts_mono_ns=123456789)
        await until(lambda: len(results) == 1, "the Result")
        r = results[0]
        self.assertEqual(r["frame_id"], fid)
        self.assertEqual(r["ts_mono_ns"], 123456789)
        self.assertTrue(any(d["class_id"] == 0 and d["score"] >= 0.25 for d in r["detections"]), "a person")
        self.assertTrue(any(d["class_id"] == 5 for d in r["detections"]), "the bus")
        for d in r["detections"]:
            self.assertTrue(d["x2"] > d["x1"] and d["y2"] > d["y1"] and d["x2"] <= 810 and d["y2"] <= 1080)
        self.assertGreater(r["latency_ms"], 0)
        self.assertGreater(r["times"]["infer_ms"], 0)
        s = c.stats()
        self.assertEqual(s["ai_frames_sent_total"], 1)
        self.assertEqual(s["ai_detections_total"], len(r["detections"]))
        self.assertEqual(s["ai_result_latency_ms"]["count"], 1)
        self.assertEqual(s["ai_frame_inflight"], 0)

    async def test_latest_wins(self):
        c = self.client()
        results = []
        c.on_result(results.append)
        await c.connect()
        await c.init(model="yolo11n", format="JPEG", auth_token=TOKEN)
        await until(c.can_send, "Ready")
        ids = [c.send_frame(BUS_JPG, format="JPEG") for _ in range(6)]
        self.assertEqual(c.stats()["ai_frame_inflight"], 1)
        self.assertFalse(c.can_send())
        await until(lambda: len(results) == 2, "two Results")
        s = c.stats()
        self.assertEqual([r["frame_id"] for r in results], [ids[0], ids[5]])
        self.assertEqual(s["ai_frames_sent_total"], 2)
        self.assertEqual(s["ai_drops_latestwins_total"], 4)
        self.assertEqual(s["ai_frames_sent_total"] + s["ai_drops_latestwins_total"], len(ids))

    async def test_hot_reload_waits_for_the_frame_in_flight(self):
        c = self.client()
        results, errors = [], []
        c.on_result(results.append)
        c.on_error(errors.append)
        await c.connect()
        first = await c.init(model="yolo11n", format="JPEG", auth_token=TOKEN)
        await until(c.can_send, "Ready")
        c.send_frame(BUS_JPG, format="JPEG")  # in flight: the worker would refuse an Init now
        second = await c.init(model="yolov8n", format="JPEG", auth_token=TOKEN)
        self.assertNotEqual(second.model_id, first.model_id)
        self.assertEqual(len(results), 1)
        c.send_frame(BUS_JPG, format="JPEG")
        await until(lambda: len(results) == 2, "a Result from the reloaded model")
        self.assertEqual(errors, [])
        self.assertEqual(c.stats()["ai_init_ok_total"], 2)

    async def test_refused_model_keeps_the_session_serving(self):
        c = self.client()
        results = []
        c.on_result(results.append)
        await c.connect()
        await c.init(model="yolo11n", format="JPEG", auth_token=TOKEN)
        with self.assertRaises(AIError) as e:
            await c.init(model="no-such-model", format="JPEG", auth_token=TOKEN)
        self.assertEqual(e.exception.code, 7)
        c.send_frame(BUS_JPG, format="JPEG")
        await until(lambda: len(results) == 1, "a Result from the kept model")

    async def test_auth_refused(self):
        for token in ("", "wrong-token"):
            c = self.client()
            errors = []
            c.on_error(errors.append)
            await c.connect()
            with self.assertRaises(AIError) as e:
                await c.init(model="yolo11n", auth_token=token)
            self.assertEqual(e.exception.code, 12)
            self.assertTrue(e.exception.fatal)
            self.assertNotIn(TOKEN, e.exception.message)
            self.assertEqual(c.stats()["ai_init_ok_total"], 0)

    async def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "host and port"):
            AIClient()
        with self.assertRaisesRegex(ValueError, "endpoint 'localhost': expected HOST:PORT"):
            AIClient(endpoints=["localhost"])
        with self.assertRaisesRegex(ValueError, "port 0"):
            AIClient(host="h", port=0)
        c = AIClient(endpoints=["[::1]:7070"])
        self.assertEqual(c.stats()["endpoint"], "::1:7070")
        with self.assertRaisesRegex(ValueError, "format 'PNG'"):
            c.send_frame(b"x", format="PNG")

    async def test_worker_restart_reconnects_and_reinits(self):
        c = self.client()
        results = []
        c.on_result(results.append)
        await c.connect()
        await c.init(model="yolo11n", format="JPEG", auth_token=TOKEN)
        c.send_frame(BUS_JPG, format="JPEG")
        await until(lambda: len(results) == 1, "a Result before the restart")
        await asyncio.to_thread(worker.stop)  # blocking: off the loop
        await until(lambda: not c.stats()["connected"], "the client to see the worker gone")
        await asyncio.to_thread(worker.start)
        await until(lambda: c.stats()["ai_init_ok_total"] == 2, "re-Init after reconnecting")
        self.assertGreaterEqual(c.stats()["ai_reconnects_total"], 1)
        c.send_frame(BUS_JPG, format="JPEG")
        await until(lambda: len(results) == 2, "a Result after the restart")


if __name__ == "__main__":
    unittest.main()
