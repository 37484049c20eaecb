#!/usr/bin/python3
"""Checks that a .proto only ever adds to the protocol: clients built against an older proto keep working.

    /usr/bin/python3 scripts/proto_compat.py [--baseline proto/aitw.v1.desc] [--proto proto/aitw.proto]
    /usr/bin/python3 scripts/proto_compat.py --write-baseline   # after a release: the new baseline

The baseline is a committed FileDescriptorSet (protoc --descriptor_set_out --include_imports) of the last
released proto. Against it, the current proto (compiled with protoc) must keep every message, enum and
field: a field keeps its number, name, type (and message/enum type name), label (repeated or not) and
oneof; an enum value keeps its number and name. A field or value removed must have its number reserved,
so that no later field reuses it with another meaning. New messages, fields and values are fine.
Exit 0: compatible; 1: every breaking change printed, one a line; 2: usage or protoc error.
"""
import argparse
import os
import subprocess
import sys
import tempfile

from google.protobuf import descriptor_pb2

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FD = descriptor_pb2.FieldDescriptorProto


def compile_proto(proto, out):
    proto = os.path.abspath(proto)
    cmd = ["protoc", "-I", os.path.dirname(proto), "--include_imports", "--descriptor_set_out", out,
           os.path.basename(proto)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(f"proto_compat: protoc failed on {proto}:\n{r.stderr}")
        sys.exit(2)


def load_set(path):
    s = descriptor_pb2.FileDescriptorSet()
    with open(path, "rb") as f:
        s.ParseFromString(f.read())
    return s


def index(fds):
    """Full name -> descriptor for every message and enum (nested ones too)."""
    messages, enums = {}, {}

    def walk(prefix, msgs, ens):
        for e in ens:
            enums[f"{prefix}.{e.name}"] = e
        for m in msgs:
            name = f"{prefix}.{m.name}"
            messages[name] = m
            walk(name, m.nested_type, m.enum_type)

    for f in fds.file:
        walk("." + f.package if f.package else "", f.message_type, f.enum_type)
    return messages, enums


def reserved(number, ranges):
    # Message reserved ranges are end-exclusive, enum reserved ranges end-inclusive (descriptor.proto).
    return any(r.start <= number < r.end if isinstance(r, descriptor_pb2.DescriptorProto.ReservedRange)
               else r.start <= number <= r.end for r in ranges)


def type_label(f):
    t = FD.Type.Name(f.type)[len("TYPE_"):].lower()
    return f"{t} {f.type_name}" if f.type_name else t


def oneof_name(m, f):
    return m.oneof_decl[f.oneof_index].name if f.HasField("oneof_index") else None


def compare(old_set, new_set):
    problems = []
    old_msgs, old_enums = index(old_set)
    new_msgs, new_enums = index(new_set)
    for name, old in old_msgs.items():
        new = new_msgs.get(name)
        if new is None:
            problems.append(f"message {name[1:]} removed")
            continue
        new_by_number = {f.number: f for f in new.field}
        new_by_name = {f.name: f for f in new.field}
        for f in old.field:
            where = f"{name[1:]}.{f.name} = {f.number}"
            g = new_by_number.get(f.number)
            if g is None:
                moved = new_by_name.get(f.name)
                if moved is not None:
                    problems.append(f"{where}: renumbered to {moved.number}")
                elif not reserved(f.number, new.reserved_range):
                    problems.append(f"{where}: removed without `reserved {f.number};`")
                continue
            if g.name != f.name:
                problems.append(f"{where}: renamed to {g.name} (JSON and generated code change)")
            if type_label(g) != type_label(f):
                problems.append(f"{where}: type changed from {type_label(f)} to {type_label(g)}")
            if g.label != f.label:
                problems.append(f"{where}: label changed from {FD.Label.Name(f.label)} to {FD.Label.Name(g.label)}")
            if oneof_name(new, g) != oneof_name(old, f):
                problems.append(f"{where}: oneof changed from {oneof_name(old, f)} to {oneof_name(new, g)}")
    for name, old in old_enums.items():
        new = new_enums.get(name)
        if new is None:
            problems.append(f"enum {name[1:]} removed")
            continue
        new_by_number = {v.number: v for v in new.value}
        for v in old.value:
            where = f"{name[1:]}.{v.name} = {v.number}"
            w = new_by_number.get(v.number)
            if w is None:
                if not reserved(v.number, new.reserved_range):
                    problems.append(f"{where}: removed without `reserved {v.number};`")
            elif w.name != v.name:
                problems.append(f"{where}: renamed to {w.name}")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", default=os.path.join(ROOT, "proto", "aitw.v1.desc"),
                    help="committed FileDescriptorSet of the released proto (default: proto/aitw.v1.desc)")
    ap.add_argument("--proto", default=os.path.join(ROOT, "proto", "aitw.proto"),
                    help="the proto to check (default: proto/aitw.proto)")
    ap.add_argument("--write-baseline", action="store_true",
                    help="write --proto's descriptor set to --baseline instead of checking (at a release)")
    args = ap.parse_args()
    if args.write_baseline:
        compile_proto(args.proto, args.baseline)
        print(f"proto_compat: wrote {args.baseline}")
        return 0
    if not os.path.isfile(args.baseline):
        sys.stderr.write(f"proto_compat: baseline '{args.baseline}' not found\n")
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "current.desc")
        compile_proto(args.proto, out)
        problems = compare(load_set(args.baseline), load_set(out))
    if problems:
        print(f"proto_compat: {args.proto} breaks the wire contract of {args.baseline}:")
        for p in problems:
            print(f"  {p}")
        return 1
    print(f"proto_compat: {os.path.basename(args.proto)} is compatible with {os.path.basename(args.baseline)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
