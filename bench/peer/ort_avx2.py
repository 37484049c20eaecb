#!/usr/bin/env python3
"""A copy of onnxruntime-node's x86-64 library that runs ONNX Runtime's AVX2 / FMA3 kernels on an AVX-512 CPU.

  python3 bench/peer/ort_avx2.py SRC_NODE_MODULES DST_NODE_MODULES
  python3 bench/peer/ort_avx2.py --library SRC.so DST.so

ONNX Runtime has no setting that caps its instruction set: MLAS (platform.cpp) and CPUIDInfo pick their
kernels from CPUID and from XCR0, the register where the OS says which vector states it saves (bits 5-7:
AVX-512's). Every `xgetbv` in libonnxruntime.so (the ISA probes: three in 1.30) is replaced by
`lea eax, [rcx + 7]` — the same three bytes; ecx is 0 at each of them, so XCR0 reads as 7 (x87, SSE, AVX
state saved, no AVX-512) — and ORT then takes the kernels it would take on an AVX2-only CPU (MLAS's FMA3
ones: under perf, the hot instructions of its forward use ymm registers where the original's use zmm;
bench/RESULTS.md). DST is a copy of SRC (hard links) but for that one patched file. Only versions whose
sites were read by hand are patched (VERIFIED). Benchmark tooling only (bench/peer/run.sh --isa avx2); never
part of aitw.
"""
import json
import os
import re
import shutil
import subprocess
import sys

XGETBV = bytes.fromhex("0f01d0")
# Versions whose sites were read in the disassembly: ecx is 0 before each (xor ecx, ecx twice; a zeroed r9d
# moved into ecx once), and what follows tests only XCR0's low byte.
VERIFIED = {"1.30.0": 3}
LEA_EAX_RCX_7 = bytes.fromhex("8d4107")


def load_segments(lib):
    """(vaddr, offset, filesz) of each PT_LOAD segment, from readelf."""
    out = subprocess.run(["readelf", "-lW", lib], check=True, capture_output=True, text=True).stdout
    segs = []
    for line in out.splitlines():
        f = line.split()
        if f and f[0] == "LOAD":
            segs.append((int(f[2], 16), int(f[1], 16), int(f[4], 16)))
    return segs


def xgetbv_offsets(lib):
    """File offsets of the xgetbv instructions objdump finds in the library's code (its output streamed: a
    whole ORT disassembles to millions of lines)."""
    pattern = re.compile(r"^\s*([0-9a-f]+):\s+xgetbv\s*$")
    vaddrs = []
    with subprocess.Popen(["objdump", "-d", "--no-show-raw-insn", lib], stdout=subprocess.PIPE, text=True,
                          bufsize=1 << 20) as p:
        for line in p.stdout:
            if "xgetbv" in line:
                m = pattern.match(line)
                if m:
                    vaddrs.append(int(m.group(1), 16))
    if p.returncode != 0:
        sys.exit(f"ort_avx2: objdump -d {lib} failed (exit {p.returncode})")
    segs = load_segments(lib)
    offsets = []
    for va in vaddrs:
        for seg_va, seg_off, size in segs:
            if seg_va <= va < seg_va + size:
                offsets.append(va - seg_va + seg_off)
                break
        else:
            sys.exit(f"ort_avx2: xgetbv at 0x{va:x} is in no loaded segment of {lib}")
    return offsets


def patched(lib):
    """The library's bytes with every xgetbv replaced, and the file offsets where they were."""
    offsets = xgetbv_offsets(lib)
    if not offsets:
        sys.exit(f"ort_avx2: no xgetbv in {lib}: it probes its ISA another way; nothing patched")
    data = bytearray(open(lib, "rb").read())
    for off in offsets:
        if data[off:off + 3] != XGETBV:
            sys.exit(f"ort_avx2: bytes at file offset 0x{off:x} of {lib} are not xgetbv")
        # ecx must be 0 there (XCR0 is register 0), so each probe has just set it (xor ecx, ecx or a zeroed
        # register), which the lea then reads: VERIFIED lists the versions checked so.
        # bench/peer/ort_avx2_test.py checks the result on a library of its own.
        data[off:off + 3] = LEA_EAX_RCX_7
    return data, offsets


def write(data, out):
    if os.path.lexists(out):
        os.unlink(out)  # in a copied tree, a hard link to the original: write a file of its own
    with open(out, "wb") as f:
        f.write(data)
    os.chmod(out, 0o755)


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--library":  # one library file, SRC to DST (the test's use)
        data, offsets = patched(sys.argv[2])
        write(data, sys.argv[3])
        print(f"ort_avx2: {len(offsets)} xgetbv patched in {sys.argv[3]}")
        return
    if len(sys.argv) != 3:
        sys.exit("usage: ort_avx2.py SRC_NODE_MODULES DST_NODE_MODULES | --library SRC.so DST.so")
    src, dst = sys.argv[1], sys.argv[2]
    rel = os.path.join("onnxruntime-node", "bin", "napi-v6", "linux", "x64", "libonnxruntime.so.1")
    lib = os.path.join(src, rel)
    if not os.path.isfile(lib):
        sys.exit(f"ort_avx2: {lib} not found (onnxruntime-node not installed, or not its x86-64 layout)")
    version = json.load(open(os.path.join(src, "onnxruntime-node", "package.json")))["version"]
    if version not in VERIFIED:
        sys.exit(f"ort_avx2: onnxruntime-node {version} is not one whose xgetbv sites were checked by hand "
                 f"({', '.join(VERIFIED)}): check that ecx is 0 before each (objdump -d {lib} | grep -B8 "
                 f"xgetbv), then add the version and its number of sites to VERIFIED")
    data, offsets = patched(lib)  # before touching DST: a library that cannot be patched leaves it as it was
    if len(offsets) != VERIFIED[version]:
        sys.exit(f"ort_avx2: {len(offsets)} xgetbv in {lib}, {VERIFIED[version]} when {version} was checked")
    if os.path.exists(dst):
        shutil.rmtree(dst)
    shutil.copytree(src, dst, copy_function=os.link, symlinks=True)
    out = os.path.join(dst, rel)
    write(data, out)
    print(f"ort_avx2: {len(offsets)} xgetbv patched in {out} "
          f"(file offsets {', '.join(hex(o) for o in offsets)}): ORT sees no AVX-512 state")


if __name__ == "__main__":
    main()
