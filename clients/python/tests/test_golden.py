"""Wire compatibility: the C++ encoding of every message type (proto/golden/, written and asserted by
tests/wire_golden_test.cpp) decodes here and re-encodes byte for byte."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from aitw_client import pb, split_framed  # noqa: E402

GOLDEN = os.path.join(os.path.dirname(__file__), "..", "..", "..", "proto", "golden")
CASES = ["init", "frame", "end", "heartbeat", "init_ok", "ready", "result", "error"]


def read(name):
    with open(os.path.join(GOLDEN, name), "rb") as f:
        return f.read()


class Golden(unittest.TestCase):
    def test_every_envelope_reencodes_byte_identically(self):
        bodies = split_framed(read("messages.bin"))
        kinds = []
        for body in bodies:
            e = pb.Envelope()
            e.ParseFromString(body)
            kinds.append(e.WhichOneof("msg"))
            self.assertEqual(e.SerializeToString(deterministic=True), body, kinds[-1])
        self.assertEqual(kinds, CASES)

    def test_values_survive_decoding(self):
        e = []
        for body in split_framed(read("messages.bin")):
            e.append(pb.Envelope())
            e[-1].ParseFromString(body)
        self.assertEqual(e[0].init.model, "yolo11n@3")
        self.assertEqual(list(e[0].init.thresholds.classes), [0, 2, 79, 300])
        self.assertEqual(e[0].init.thresholds.conf, 0.25)
        self.assertEqual(e[0].init.format, pb.JPEG)
        self.assertEqual(e[1].frame.frame_id, 9007199254740993)
        self.assertEqual(e[1].frame.ts_mono_ns, -1234567890123456789)
        self.assertEqual(len(e[1].frame.pixels), 24)
        self.assertEqual(e[6].result.frame_id, 18446744073709551615)
        self.assertEqual(e[6].result.detections[1].class_id, 79)
        self.assertEqual(e[6].result.times.infer_ms, 55.25)
        self.assertEqual((e[7].error.code, e[7].error.fatal), (12, True))

    def test_recording_header_reencodes_byte_identically(self):
        (body,) = split_framed(read("recording_header.bin"))
        h = pb.RecordingHeader()
        h.ParseFromString(body)
        self.assertEqual((h.fps, h.source), (12.5, "camera_pan.mp4"))
        self.assertEqual(h.SerializeToString(deterministic=True), body)

    def test_truncated_input_is_refused_with_the_cause(self):
        data = read("messages.bin")
        with self.assertRaisesRegex(ValueError, "truncated at byte"):
            split_framed(data[:-1])
        with self.assertRaisesRegex(ValueError, "truncated length prefix"):
            split_framed(data + b"\x01")


if __name__ == "__main__":
    unittest.main()
