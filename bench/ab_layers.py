#!/usr/bin/env python3
"""Alternated rounds of `aitw bench layers` between builds: the A/B behind bench/RESULTS.md's forward figures.

  python3 bench/ab_layers.py [--rounds 15] [--repetitions 60] [--model yolo11n] [--precision bf16]
                             [--threads 2] [--json OUT] NAME=COMMAND NAME=COMMAND ...

Each COMMAND is an `aitw` binary, or a command line ending in one (`"env AITW_CONV=opencv build/tools/aitw"`).
Every round runs each build once (`bench layers --repetitions N --json`), in alternating order, so that the
host's load swings hit all of them alike; on shared machines absolute times drift by 10-20 % within minutes,
while the ratio of two builds' forwards in the same round holds. Printed: each round's forward medians, per
build the median over the rounds, the median of the rounds' ratios against the first build, the sums of the
per-layer medians (OpenCV's getPerfProfile) by layer type and the layers that moved most.

How much a host resolves: compare a build with itself (`a=build/tools/aitw b=build/tools/aitw`). On the
2-core Zen 5 VM of bench/RESULTS.md that gave 0.978-0.988 over 15-30 rounds: differences under 2-3 % need
more, shorter rounds (60 x 20 repetitions: within ~1 %).
"""
import argparse
import json
import os
import shlex
import statistics as st
import subprocess
import sys
import tempfile


def parse_build(text):
    name, sep, command = text.partition("=")
    if not sep or not name or not command.strip():
        raise argparse.ArgumentTypeError(f"'{text}': expected NAME=COMMAND (an aitw binary or a command line)")
    return name, shlex.split(command)


def run_round(name, command, args, out):
    cmd = command + ["bench", "layers", "--model", args.model, "--precision", args.precision, "--threads",
                     str(args.threads), "--repetitions", str(args.repetitions), "--imgsz", args.imgsz, "--json", out]
    try:
        p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    except OSError as e:
        raise SystemExit(f"ab_layers: build '{name}' cannot run: {shlex.join(cmd)}: {e.strerror}")
    if p.returncode != 0:
        tail = "\n".join(p.stderr.strip().splitlines()[-5:])
        raise SystemExit(f"ab_layers: build '{name}' failed (exit {p.returncode}): {shlex.join(cmd)}\n{tail}")
    with open(out) as f:
        return json.load(f)


def per_layer_medians(reports):
    ms, kind = {}, {}
    for r in reports:
        for e in r["per_layer"]:
            ms.setdefault(e["name"], []).append(e["ms"])
            kind[e["name"]] = e.get("type", "")
    return {k: st.median(v) for k, v in ms.items()}, kind


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("builds", nargs="+", type=parse_build, metavar="NAME=COMMAND")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--repetitions", type=int, default=60, help="forwards per round and build")
    ap.add_argument("--model", default="yolo11n")
    ap.add_argument("--precision", default="bf16", choices=["fp32", "bf16", "auto"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--imgsz", default="480x640")
    ap.add_argument("--top", type=int, default=6, help="layers listed that moved most, each way")
    ap.add_argument("--json", help="also write {builds: {name: [reports]}, ratios: {name: [...]}} to FILE")
    args = ap.parse_args(argv)
    if len(args.builds) < 2:
        ap.error("give at least two builds: NAME=COMMAND NAME=COMMAND")
    names = [n for n, _ in args.builds]
    if len(set(names)) != len(names):
        ap.error("build names must differ")
    if args.rounds < 1 or args.repetitions < 1:
        ap.error("--rounds and --repetitions must be >= 1")

    reports = {n: [] for n in names}
    with tempfile.TemporaryDirectory(prefix="aitw-ab-") as tmp:
        for r in range(args.rounds):
            order = args.builds if r % 2 == 0 else args.builds[::-1]
            for name, command in order:
                reports[name].append(run_round(name, command, args, os.path.join(tmp, name + ".json")))
            print(f"round {r + 1}/{args.rounds}: " +
                  "  ".join(f"{n} {reports[n][-1]['forward_ms_median']:.2f}" for n in names), flush=True)

    base = names[0]
    ratios = {}
    print(f"\n{args.model} {args.imgsz} {args.precision}, {args.threads} threads, {args.rounds} rounds of "
          f"{args.repetitions} forwards (median of each round's forwards; per-layer: OpenCV's profile)")
    for n in names:
        fwd = [j["forward_ms_median"] for j in reports[n]]
        line = f"  {n:12s} forward median {st.median(fwd):7.3f} ms (min {min(fwd):.3f})"
        if n != base:
            ratios[n] = [y["forward_ms_median"] / x["forward_ms_median"] for x, y in zip(reports[base], reports[n])]
            line += (f"   {n}/{base}: median of the rounds' ratios {st.median(ratios[n]):.4f} "
                     f"(range {min(ratios[n]):.3f}-{max(ratios[n]):.3f})")
        print(line)

    meds = {n: per_layer_medians(reports[n]) for n in names}
    base_ms, kinds = meds[base]
    for n in names[1:]:
        ms, _ = meds[n]
        common = [k for k in base_ms if k in ms]
        a, b = sum(base_ms[k] for k in common), sum(ms[k] for k in common)
        print(f"\n{n} against {base}: sum of per-layer medians {a:.3f} -> {b:.3f} ms ({b / a:.4f})")
        by_kind = {}
        for k in common:
            s = by_kind.setdefault(kinds[k], [0.0, 0.0, 0])
            s[0] += base_ms[k]
            s[1] += ms[k]
            s[2] += 1
        for kind, (x, y, count) in sorted(by_kind.items(), key=lambda kv: -kv[1][0]):
            if x + y > 0.001:
                print(f"  {kind:18s} x{count:<3d} {x:7.3f} -> {y:7.3f} ms")
        moved = sorted(common, key=lambda k: ms[k] - base_ms[k])
        shown = moved[:args.top] + [k for k in moved[-args.top:] if k not in moved[:args.top]]
        for k in shown:
            print(f"  {ms[k] - base_ms[k]:+.3f} ms  {base_ms[k]:.3f} -> {ms[k]:.3f}  {k}")
        for who, only in ((base, sorted(set(base_ms) - set(ms))), (n, sorted(set(ms) - set(base_ms)))):
            if only:
                more = f" and {len(only) - 3} more" if len(only) > 3 else ""
                print(f"  {len(only)} layers only in {who} ({sum((meds[who][0][k] for k in only)):.3f} ms): "
                      f"{', '.join(only[:3])}{more}")
        if reports[base][-1].get("layout") != reports[n][-1].get("layout"):
            print(f"  layout {reports[base][-1].get('layout')} -> {reports[n][-1].get('layout')}")

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"builds": reports, "ratios": ratios, "model": args.model, "precision": args.precision,
                       "threads": args.threads, "imgsz": args.imgsz}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
