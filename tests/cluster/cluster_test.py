#!/usr/bin/python3
"""Many workers on loopback, as a site runs them (README "Running many workers").

`failover`: an s3rver registry with yolo11n@1 pushed, three `aitw serve` pulling it (--max-session-age
short), HAProxy in front with deploy/haproxy/aitw.cfg (ports substituted), six replay clients through HAProxy
at 4 fps for 30 s. Mid-run one worker gets SIGTERM and is restarted (a rolling restart), another SIGKILL and
is restarted. Asserts: every client keeps receiving results (longest gap <= reconnect backoff + model load +
two frame turns), no result twice, frames lost <= 1 per client per failover, and at the end the sessions
are spread over the three workers within +-1 (each worker's `connections_active`).

`prometheus`: three workers, Debian's prometheus scraping them every second (generated config), a replay
over the endpoint list of the three (--server A,B,C); `sum(frames_processed_total)` from its HTTP API equals
the frames the replay got answered.

Run by ctest (tests/cluster/CMakeLists.txt); prints the measured figures as one JSON line at the end.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

FPS, CLIENTS = 4, 6
# The client library's reconnect backoff (net::ClientConfig): 100 ms doubling up to 5 s, jittered.
BACKOFF_MS = [100, 200, 400, 800]


def free_ports(n):
    """n distinct free loopback ports (held together while chosen, so none is picked twice)."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def wait_port(port, proc, what, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited at start (status {proc.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout} s")


def http_get(url, timeout=2):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


def gauge(metrics_port, name):
    """A metric's value from a worker's /metrics (None when it does not answer)."""
    try:
        _, body = http_get(f"http://127.0.0.1:{metrics_port}/metrics")
    except OSError:
        return None
    m = re.search(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+-]+)$", body, re.M)
    return float(m.group(1)) if m else None


class Cluster:
    def __init__(self, args, work):
        self.args, self.work = args, work
        self.procs = []
        self.env = dict(os.environ)
        # An empty model folder (the CI's AITW_MODEL_DIR would hold the shared models): every model comes
        # from the registry, as on a fleet, and `/readyz` must still put a fresh worker in rotation (ready
        # when a registry is configured); Init asks for yolo11n@1 (each worker's log says where it came from).
        models = os.path.join(work, "models")
        os.makedirs(models)
        self.env["AITW_MODEL_DIR"] = models
        self.env["XDG_STATE_HOME"] = work  # each worker's history database stays in the test's folder
        self.workers = []  # (listen port, metrics port)
        self.serve_procs = {}
        self.registry = None

    def spawn(self, cmd, log, env=None):
        f = open(os.path.join(self.work, log), "ab")
        p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env or self.env,
                             start_new_session=True)
        self.procs.append(p)
        return p

    def aitw(self, *argv, env=None):
        r = subprocess.run([self.args.aitw, *argv], capture_output=True, text=True, env=env or self.env,
                           timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"aitw {' '.join(argv)}: exit {r.returncode}\n{r.stdout}{r.stderr}")
        return r.stdout

    def start_registry(self):
        port, = free_ports(1)
        js = os.path.join(self.args.s3rver_dir, "node_modules/s3rver/bin/s3rver.js")
        if not os.path.exists(js):
            raise RuntimeError(f"s3rver is not installed at {js}: run `bash scripts/install-s3rver.sh`")
        data = os.path.join(self.work, "s3")
        os.makedirs(data)
        # --openssl-legacy-provider: s3rver's DES continuation tokens (see registry/test/s3rver.cpp).
        p = self.spawn([self.args.node, "--openssl-legacy-provider", js, "-d", data, "-a", "127.0.0.1", "-p",
                        str(port), "--silent", "--configure-bucket", "aitw"], "s3rver.log")
        wait_port(port, p, "s3rver")
        self.env.update(AWS_ACCESS_KEY_ID="S3RVER", AWS_SECRET_ACCESS_KEY="S3RVER")
        self.registry = f"s3://aitw/cluster?endpoint=http://127.0.0.1:{port}"
        out = self.aitw("registry", "push", os.path.join(self.args.shared, "models", "yolo11n.onnx"), "--name",
                        "yolo11n", "--registry", self.registry)
        assert "pushed yolo11n@1" in out, out

    def start_worker(self, i, extra):
        listen, metrics = self.workers[i]
        env = dict(self.env, XDG_CACHE_HOME=os.path.join(self.work, f"cache{i}"))  # each pulls for itself
        cmd = [self.args.aitw, "serve", "--listen", f"127.0.0.1:{listen}", "--metrics", f"127.0.0.1:{metrics}",
               "--threads", "1", *extra]
        if self.registry:
            cmd += ["--registry", self.registry]
        p = self.spawn(cmd, f"worker{i}.log", env)
        wait_port(listen, p, f"worker {i}")
        wait_port(metrics, p, f"worker {i} metrics")
        self.serve_procs[i] = p
        return p

    def start_workers(self, extra):
        ports = free_ports(6)
        self.workers = [(ports[2 * i], ports[2 * i + 1]) for i in range(3)]
        for i in range(3):
            self.start_worker(i, extra)

    def warm(self, model, rec):
        """One short replay straight to each worker: its model is loaded before the measured run."""
        for listen, _ in self.workers:
            self.aitw("replay", rec, "--server", f"127.0.0.1:{listen}", "--model", model, "--fps", "4",
                      "--duration", "0.5")

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def log(self, name):
        with open(os.path.join(self.work, name), "rb") as f:
            return f.read().decode(errors="replace")


def haproxy_config(template, front, workers):
    """deploy/haproxy/aitw.cfg with its bind port and server lines replaced by the loopback workers."""
    text = open(template).read()
    assert re.search(r"^\s*balance leastconn$", text, re.M), "aitw.cfg: no `balance leastconn`"
    assert re.search(r"^\s*option httpchk GET /readyz$", text, re.M), "aitw.cfg: no /readyz health check"
    text, binds = re.subn(r"^(\s*bind )\S+$", rf"\g<1>127.0.0.1:{front}", text, flags=re.M)
    assert binds == 1, "aitw.cfg: expected one `bind` line"
    lines = text.splitlines()
    servers = [i for i, l in enumerate(lines) if re.match(r"\s*server \S+ \S+:\d+ check port \d+", l)]
    assert servers, "aitw.cfg: no `server NAME HOST:PORT check port METRICS` lines"
    indent = re.match(r"\s*", lines[servers[0]]).group(0)
    new = [f"{indent}server w{i} 127.0.0.1:{l} check port {m}" for i, (l, m) in enumerate(workers)]
    lines = lines[:servers[0]] + new + [l for i, l in enumerate(lines) if i > servers[-1]]
    return "\n".join(lines) + "\n"


def failover(args, c, rec):
    c.start_registry()
    c.start_workers(["--max-session-age", args.max_session_age])
    c.warm("yolo11n@1", rec)
    for i in range(3):
        assert "model yolo11n@1 -> yolo11n@1 sha256" in c.log(f"worker{i}.log"), c.log(f"worker{i}.log")
    front, = free_ports(1)
    cfg = os.path.join(c.work, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write(haproxy_config(args.haproxy_cfg, front, c.workers))
    hp = c.spawn([args.haproxy, "-db", "-f", cfg], "haproxy.log")
    wait_port(front, hp, "haproxy")
    time.sleep(2.5)  # every worker seen up by its health checks (rise 2, inter 1 s)

    out = os.path.join(c.work, "replay.json")
    dets = os.path.join(c.work, "detections.jsonl")
    duration = args.duration
    replay = c.spawn([args.aitw, "replay", rec, "--server", f"127.0.0.1:{front}", "--model", "yolo11n@1",
                      "--clients", str(CLIENTS), "--fps", str(FPS), "--duration", str(duration), "--json", out,
                      "--detections", dets], "replay.log")
    t0 = time.monotonic()

    def at(t):
        time.sleep(max(0.0, t0 + t - time.monotonic()))

    # The rolling restart: SIGTERM (frames inside answered, End, exit 0), back 2 s later.
    at(duration * 0.25)
    term = c.serve_procs[0]
    term.send_signal(signal.SIGTERM)
    term_rc = term.wait(timeout=20)
    at(duration * 0.25 + 2)
    c.start_worker(0, ["--max-session-age", args.max_session_age])
    # A crash: SIGKILL, back 1 s later (its sessions are cut; their frame in flight is lost).
    at(duration * 0.5)
    c.serve_procs[1].kill()
    c.serve_procs[1].wait()
    at(duration * 0.5 + 1)
    c.start_worker(1, ["--max-session-age", args.max_session_age])
    # The spread over the last fifth of the run, sampled while every client is connected.
    samples = []
    at(duration * 0.8)
    while time.monotonic() < t0 + duration - 0.5:
        counts = [gauge(m, "connections_active") for _, m in c.workers]
        if None not in counts and sum(counts) == CLIENTS:
            samples.append([int(x) for x in counts])
        time.sleep(0.25)
    rc = replay.wait(timeout=120)
    if rc != 0:
        raise AssertionError(f"replay exit {rc}\n{c.log('replay.log')}")
    report = json.load(open(out))
    load_s = max(gauge(m, "model_load_seconds") or 0 for _, m in c.workers)

    failures = []
    assert term_rc == 0, f"SIGTERM: worker 0 exit {term_rc}"
    per_client = report["clients"]
    # A gap is at most: the reconnect backoff (up to four failed tries), a model load on the worker the
    # client lands on, and two turns of a frame (the one lost or answered before, the one after) at the
    # worst client's p99.
    p99 = max(cl["e2e_ms"]["p99"] for cl in per_client)
    bound_ms = sum(BACKOFF_MS) + 1000 * load_s + 2 * max(p99, 1000 / FPS)
    failovers = 2
    ids = {}
    for line in open(dets):
        d = json.loads(line)
        key = (d["client"], d["frame_id"])
        ids[key] = ids.get(key, 0) + 1
    dup = sum(k - 1 for k in ids.values())
    if dup:
        failures.append(f"{dup} results arrived twice (detections.jsonl)")
    for cl in per_client:
        n = cl["client"]
        if cl["frames_processed"] == 0:
            failures.append(f"client {n}: no result at all")
        if cl["max_gap_ms"] > bound_ms:
            failures.append(f"client {n}: longest gap {cl['max_gap_ms']} ms > {bound_ms:.0f} ms")
        if cl["frames_lost_on_disconnect"] > failovers:
            failures.append(f"client {n}: {cl['frames_lost_on_disconnect']} frames lost in {failovers} failovers")
        if cl["duplicate_results"]:
            failures.append(f"client {n}: {cl['duplicate_results']} duplicate results")
    spread = samples[-1] if samples else None
    if spread is None:
        failures.append("never all six sessions connected during the last fifth of the run")
    elif max(abs(k - CLIENTS / 3) for k in spread) > 1:
        failures.append(f"sessions per worker {spread}: not within +-1 of {CLIENTS // 3}")
    figures = {
        "test": "failover",
        "frames_offered": report["frames_offered"],
        "frames_processed": report["frames_processed"],
        "worst_client_processed_pct": round(
            100 * min(cl["frames_processed"] / max(cl["frames_offered"], 1) for cl in per_client), 1),
        "longest_gap_ms": max(cl["max_gap_ms"] for cl in per_client),
        "gap_bound_ms": round(bound_ms),
        "model_load_s": load_s,
        "frames_lost": [cl["frames_lost_on_disconnect"] for cl in per_client],
        "reconnects": report["reconnects"],
        "graceful_moves": report["graceful_moves"],
        "duplicates": dup,
        "spread": spread,
        "spread_samples": len(samples),
    }
    return figures, failures


def prometheus(args, c, rec):
    # No registry here: the workers serve the shared model folder's yolo11n.
    c.env["AITW_MODEL_DIR"] = os.path.join(args.shared, "models")
    c.start_workers([])
    c.warm("yolo11n", rec)
    prom_port, = free_ports(1)
    cfg = os.path.join(c.work, "prometheus.yml")
    targets = ", ".join(f"'127.0.0.1:{m}'" for _, m in c.workers)
    with open(cfg, "w") as f:
        f.write(f"global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n"
                f"scrape_configs:\n  - job_name: aitw\n    static_configs:\n      - targets: [{targets}]\n")
    prom = c.spawn([args.prometheus, f"--config.file={cfg}", f"--storage.tsdb.path={c.work}/tsdb",
                    f"--web.listen-address=127.0.0.1:{prom_port}"], "prometheus.log")
    wait_port(prom_port, prom, "prometheus")

    def query(q):
        url = f"http://127.0.0.1:{prom_port}/api/v1/query?" + urllib.parse.urlencode({"query": q})
        try:
            _, body = http_get(url)
        except OSError:
            return None
        res = json.loads(body)["data"]["result"]
        return float(res[0]["value"][1]) if res else None

    deadline = time.monotonic() + 30
    while query("count(up == 1)") != 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    before = query("sum(frames_processed_total)")  # the warm-up's frames
    out = os.path.join(c.work, "replay.json")
    endpoints = ",".join(f"127.0.0.1:{l}" for l, _ in c.workers)
    r = subprocess.run([args.aitw, "replay", rec, "--server", endpoints, "--model", "yolo11n", "--clients",
                        str(CLIENTS), "--fps", str(FPS), "--duration", str(args.duration), "--json", out],
                       capture_output=True, text=True, env=c.env, timeout=120)
    if r.returncode != 0:
        raise AssertionError(f"replay exit {r.returncode}\n{r.stdout}{r.stderr}")
    report = json.load(open(out))
    direct = sum(gauge(m, "frames_processed_total") for _, m in c.workers)
    # The scrape after the last Result: the sum stops changing at the workers' own total.
    deadline = time.monotonic() + 15
    total = None
    while time.monotonic() < deadline:
        total = query("sum(frames_processed_total)")
        if total == direct:
            break
        time.sleep(0.25)
    failures = []
    answered = report["frames_processed"]
    if before is None or total is None:
        failures.append(f"prometheus: no frames_processed_total series (before {before}, after {total})")
    elif total - before != answered:
        failures.append(f"prometheus: sum(frames_processed_total) grew by {total - before}, replay got "
                        f"{answered} results (workers' own /metrics: {direct})")
    used = [k for k, v in report["endpoints"].items() if v > 0]
    figures = {"test": "prometheus", "replay_results": answered, "prometheus_sum_delta":
               None if total is None or before is None else total - before, "endpoints": report["endpoints"],
               "used": len(used)}
    return figures, failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("which", choices=["failover", "prometheus"])
    ap.add_argument("--aitw", required=True)
    ap.add_argument("--shared", required=True, help="folder holding models/ and datasets/")
    ap.add_argument("--node", default=shutil.which("node") or "node")
    ap.add_argument("--s3rver-dir", default="build/s3rver")
    ap.add_argument("--haproxy", default=shutil.which("haproxy") or "/usr/sbin/haproxy")
    ap.add_argument("--haproxy-cfg", default="deploy/haproxy/aitw.cfg")
    ap.add_argument("--prometheus", default=shutil.which("prometheus") or "/usr/bin/prometheus")
    ap.add_argument("--duration", type=float, default=30)
    ap.add_argument("--max-session-age", default="6s", help="the workers' (failover; 0 shows the imbalance)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (logs) even on success")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix=f"aitw_cluster_{args.which}_")
    c = Cluster(args, work)
    ok = False
    try:
        rec = os.path.join(work, "bus.aitwrec")
        c.aitw("record", "--pan", "--from", os.path.join(args.shared, "datasets/images/bus.jpg"), "--fps",
               str(FPS), "--duration", "2", "--out", rec)
        figures, failures = (failover if args.which == "failover" else prometheus)(args, c, rec)
        print(json.dumps(figures))
        for f in failures:
            print("FAIL:", f)
        ok = not failures
    finally:
        c.stop()
        if not ok:
            print(f"logs kept in {work}")
            for name in sorted(os.listdir(work)):
                if name.endswith(".log"):
                    print(f"--- {name} (last 15 lines)")
                    print("\n".join(c.log(name).splitlines()[-15:]))
        elif not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
