#!/usr/bin/python3
"""scripts/proto_compat.py: the committed proto passes against its baseline, and each kind of breaking
change, made to a copy of proto/aitw.proto, fails with a line naming the field; additive changes pass."""
import os
import re
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECKER = os.path.join(ROOT, "scripts", "proto_compat.py")
PROTO = os.path.join(ROOT, "proto", "aitw.proto")
BASELINE = os.path.join(ROOT, "proto", "aitw.v1.desc")


def check(proto_text=None):
    """Runs the checker on the committed proto, or on `proto_text` as aitw.proto; returns (rc, output)."""
    with tempfile.TemporaryDirectory() as tmp:
        proto = PROTO
        if proto_text is not None:
            proto = os.path.join(tmp, "aitw.proto")
            with open(proto, "w") as f:
                f.write(proto_text)
        r = subprocess.run([sys.executable, CHECKER, "--baseline", BASELINE, "--proto", proto],
                           capture_output=True, text=True)
        return r.returncode, r.stdout + r.stderr


def edited(old, new):
    with open(PROTO) as f:
        text = f.read()
    assert old in text, f"test fixture out of date: '{old}' not in aitw.proto"
    return text.replace(old, new, 1)


class ProtoCompat(unittest.TestCase):
    def assertBreaks(self, text, *expected):
        rc, out = check(text)
        self.assertEqual(rc, 1, out)
        for e in expected:
            self.assertIn(e, out)

    def test_committed_proto_is_compatible(self):
        rc, out = check()
        self.assertEqual(rc, 0, out)

    def test_changed_type_fails(self):
        self.assertBreaks(edited("uint64 frame_id = 1;\n  int64 ts_mono_ns = 2;  // the client's",
                                 "uint32 frame_id = 1;\n  int64 ts_mono_ns = 2;  // the client's"),
                          "aitw.v1.Frame.frame_id = 1: type changed from uint64 to uint32")

    def test_changed_message_type_fails(self):
        self.assertBreaks(edited("StageTimes times = 4;", "Thresholds times = 4;"),
                          "Result.times = 4: type changed from message .aitw.v1.StageTimes to message "
                          ".aitw.v1.Thresholds")

    def test_repeated_made_singular_fails(self):
        self.assertBreaks(edited("repeated uint32 classes = 4;", "uint32 classes = 4;"),
                          "Thresholds.classes = 4: label changed")

    def test_renamed_field_fails(self):
        self.assertBreaks(edited("string client_id = 6;", "string client_name = 6;"),
                          "Init.client_id = 6: renamed to client_name")

    def test_renumbered_field_fails(self):
        self.assertBreaks(edited("string client_id = 6;", "string client_id = 9;"),
                          "Init.client_id = 6: renumbered to 9")

    def test_removed_field_without_reserved_fails(self):
        self.assertBreaks(edited("  string preproc = 7;\n", ""),
                          "InitOk.preproc = 7: removed without `reserved 7;`")

    def test_removed_field_with_reserved_passes(self):
        rc, out = check(edited("  string preproc = 7;\n", "  reserved 7;\n  reserved \"preproc\";\n"))
        self.assertEqual(rc, 0, out)

    def test_added_fields_messages_and_values_pass(self):
        text = edited("  string preproc = 7;\n", "  string preproc = 7;\n  uint32 session_ttl_s = 8;\n")
        text = text.replace("  JPEG = 3;", "  JPEG = 3;\n  NV12 = 4;", 1)
        text += "\nmessage Drain {\n  string reason = 1;\n}\n"
        rc, out = check(text)
        self.assertEqual(rc, 0, out)

    def test_removed_enum_value_fails(self):
        self.assertBreaks(edited("  BGR8 = 2;\n", ""), "PixelFormat.BGR8 = 2: removed without `reserved 2;`")

    def test_removed_message_fails(self):
        with open(PROTO) as f:
            text = re.sub(r"message RecordingHeader \{.*?\n\}\n?", "", f.read(), flags=re.S)
        self.assertBreaks(text, "message aitw.v1.RecordingHeader removed")

    def test_field_moved_out_of_oneof_fails(self):
        self.assertBreaks(edited("    Error error = 8;\n  }\n", "  }\n  Error error = 8;\n"),
                          "Envelope.error = 8: oneof changed from msg to None")

    def test_protoc_error_is_reported(self):
        rc, out = check("syntax = \"proto3\";\nmessage {")
        self.assertEqual(rc, 2, out)
        self.assertIn("protoc failed", out)


if __name__ == "__main__":
    unittest.main()
