"""Starts a real `aitw serve` on a free loopback port for a test suite: the binary from $AITW_BIN or
../../build/tools/aitw, models from $AITW_MODEL_DIR (default ../../../shared/models)."""
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
AITW = os.environ.get("AITW_BIN", os.path.join(ROOT, "build", "tools", "aitw"))
MODEL_DIR = os.environ.get("AITW_MODEL_DIR", os.path.join(ROOT, "..", "shared", "models"))
SHARED = os.environ.get("AITW_SHARED_DIR", os.path.dirname(os.path.abspath(MODEL_DIR)))
with open(os.path.join(SHARED, "datasets", "images", "bus.jpg"), "rb") as _f:
    BUS_JPG = _f.read()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Worker:
    """One worker process; start() again after stop() reuses the port (a restart, as a client sees it)."""

    def __init__(self, auth_token=None):
        if not os.path.exists(AITW):
            raise RuntimeError(f"aitw binary '{AITW}' not found: build it or set AITW_BIN")
        self.dir = tempfile.mkdtemp(prefix="aitw-py-test-")
        self.args = []
        if auth_token:
            path = os.path.join(self.dir, "token")
            with open(path, "w") as f:
                f.write(auth_token)
            self.args += ["--auth-token-file", path]
        self.port = free_port()
        self.proc = None
        self.log = os.path.join(self.dir, "serve.log")

    def start(self):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [AITW, "serve", "--listen", f"127.0.0.1:{self.port}", "--model-dir", MODEL_DIR] + self.args,
                env=dict(os.environ, AITW_MODEL_DIR=MODEL_DIR), stdout=subprocess.DEVNULL, stderr=log)
        # Listening is what the client needs; poll for it (a failed start exits, and says why).
        while True:
            if self.proc.poll() is not None:
                with open(self.log) as f:
                    raise RuntimeError(f"aitw serve exited {self.proc.returncode}:\n{f.read()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


async def until(pred, what, timeout=30.0):
    """Returns when pred() holds, checking every 20 ms; raises after `timeout` naming `what` (a safety net
    for a hung test, not a timing assertion)."""
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.02)
