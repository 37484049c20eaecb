#!/usr/bin/python3
"""The deploy files say what README "Running many workers" says.

- deploy/systemd/aitw.service passes `systemd-analyze verify` (works without systemd running; ExecStart
  pointed at the built aitw, any warning counts as a failure), stops with SIGTERM and waits longer than the
  drain (TimeoutStopSec > AITW_DRAIN_TIMEOUT).
- deploy/k8s/*.yaml parse (python3-yaml when installed; without it that part is reported as not run, the
  systemd part still runs), and hold a Deployment with readiness /readyz, liveness /healthz, a preStop,
  terminationGracePeriodSeconds > preStop + drain, 2 cores requested; a Service and a PodDisruptionBudget
  selecting its pods.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile


def seconds(spec):
    """10s, 500ms, 2m, or plain seconds (as aitw's durations)."""
    m = re.fullmatch(r"([0-9.]+)(ms|s|m)?", spec.strip())
    if not m:
        raise ValueError(f"not a duration: {spec!r}")
    x = float(m.group(1))
    return {"ms": x / 1000, "m": x * 60}.get(m.group(2), x)


def check_systemd(unit_path, aitw, failures):
    text = open(unit_path).read()
    keys = {}
    for line in text.splitlines():
        m = re.match(r"^(\w+)=(.*)$", line)
        if m:
            keys.setdefault(m.group(1), []).append(m.group(2))
    env = dict(v.split("=", 1) for e in keys.get("Environment", []) for v in [e])
    if keys.get("KillSignal") != ["SIGTERM"]:
        failures.append(f"aitw.service: KillSignal {keys.get('KillSignal')}, expected SIGTERM")
    if keys.get("Type") != ["exec"]:
        failures.append(f"aitw.service: Type {keys.get('Type')}, expected exec")
    if "AITW_DRAIN_TIMEOUT" not in env or "TimeoutStopSec" not in keys:
        failures.append("aitw.service: needs Environment=AITW_DRAIN_TIMEOUT=... and TimeoutStopSec")
    elif seconds(keys["TimeoutStopSec"][0]) <= seconds(env["AITW_DRAIN_TIMEOUT"]):
        failures.append("aitw.service: TimeoutStopSec must exceed the drain timeout")
    for k in ("AITW_LISTEN", "AITW_METRICS", "AITW_MAX_SESSION_AGE"):
        if k not in env:
            failures.append(f"aitw.service: no Environment={k}=...")
    with tempfile.TemporaryDirectory() as d:
        unit = os.path.join(d, "aitw.service")
        with open(unit, "w") as f:
            f.write(text.replace("/usr/local/bin/aitw", os.path.abspath(aitw)))
        r = subprocess.run(["systemd-analyze", "verify", "--man=no", unit], capture_output=True, text=True)
        # Messages about units this one does not mention (the host's own) are not ours.
        ours = [l for l in (r.stdout + r.stderr).splitlines() if "aitw.service" in l]
        if r.returncode != 0 or ours:
            failures.append(f"systemd-analyze verify: exit {r.returncode}\n{r.stdout}{r.stderr}")


def check_k8s(folder, failures):
    try:
        import yaml
    except ImportError:
        print("deploy/k8s: python3-yaml not installed: the manifests were not parsed (not run)")
        return
    docs = []
    for name in sorted(os.listdir(folder)):
        if name.endswith(".yaml"):
            with open(os.path.join(folder, name)) as f:
                docs += [d for d in yaml.safe_load_all(f) if d]
    by_kind = {d["kind"]: d for d in docs}
    missing = [k for k in ("Deployment", "Service", "PodDisruptionBudget") if k not in by_kind]
    if missing:
        failures.append(f"deploy/k8s: no {', '.join(missing)}")
        return
    dep = by_kind["Deployment"]
    pod = dep["spec"]["template"]
    labels = pod["metadata"]["labels"]
    spec = pod["spec"]
    c = spec["containers"][0]
    env = {e["name"]: e.get("value") for e in c.get("env", [])}
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}

    def probe_path(name, path):
        p = c.get(name, {}).get("httpGet", {})
        if p.get("path") != path:
            failures.append(f"Deployment: {name} path {p.get('path')}, expected {path}")
        port = p.get("port")
        if ports.get(port, port) != int(env["AITW_METRICS"].rsplit(":", 1)[1]):
            failures.append(f"Deployment: {name} port {port} is not AITW_METRICS's")

    probe_path("readinessProbe", "/readyz")
    probe_path("livenessProbe", "/healthz")
    pre = c.get("lifecycle", {}).get("preStop")
    if not pre:
        failures.append("Deployment: no preStop")
    pre_s = 0
    if pre and "exec" in pre:
        cmd = pre["exec"]["command"]
        pre_s = float(cmd[-1]) if cmd[0].endswith("sleep") else 0
    grace = spec.get("terminationGracePeriodSeconds", 30)
    if grace <= pre_s + seconds(env.get("AITW_DRAIN_TIMEOUT", "10s")):
        failures.append(f"Deployment: terminationGracePeriodSeconds {grace} <= preStop {pre_s} s + drain")
    if str(c["resources"]["requests"]["cpu"]) not in ("2", "2000m"):
        failures.append(f"Deployment: requests cpu {c['resources']['requests']['cpu']}, expected 2")
    if ports.get("worker") != int(env["AITW_LISTEN"].rsplit(":", 1)[1]):
        failures.append("Deployment: containerPort `worker` is not AITW_LISTEN's port")
    for kind in ("Service", "PodDisruptionBudget"):
        sel = by_kind[kind]["spec"]["selector"]
        sel = sel.get("matchLabels", sel)
        if any(labels.get(k) != v for k, v in sel.items()):
            failures.append(f"{kind}: selector {sel} does not select the Deployment's pods {labels}")
    if dep["spec"]["selector"]["matchLabels"].items() - labels.items():
        failures.append("Deployment: selector does not match its own pod labels")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--aitw", required=True)
    ap.add_argument("--deploy", required=True, help="the repository's deploy/ folder")
    args = ap.parse_args()
    failures = []
    check_systemd(os.path.join(args.deploy, "systemd/aitw.service"), args.aitw, failures)
    check_k8s(os.path.join(args.deploy, "k8s"), failures)
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
