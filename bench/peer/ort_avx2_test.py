#!/usr/bin/env python3
"""bench/peer/ort_avx2.py on a library of its own: a probe that reads XCR0 with xgetbv (as MLAS's and
CPUIDInfo's do) returns the OS's real mask before the patch and 7 (x87, SSE, AVX; no AVX-512 state) after it,
and a library with no xgetbv is refused, not copied. x86-64 with gcc only (ctest adds it there)."""
import ctypes
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PROBE = r"""
unsigned xcr0_low(void) {
  unsigned a, d;
  __asm__ volatile("xor %%ecx, %%ecx\n\txgetbv" : "=a"(a), "=d"(d) : : "ecx");
  return a;
}
unsigned xcr0_again(unsigned x) {  /* a second probe site, behind a branch */
  unsigned a = 0, d;
  if (x) __asm__ volatile("xor %%ecx, %%ecx\n\txgetbv" : "=a"(a), "=d"(d) : : "ecx");
  return a;
}
"""


def build(tmp, name, source):
    c, so = os.path.join(tmp, name + ".c"), os.path.join(tmp, name + ".so")
    open(c, "w").write(source)
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", so, c], check=True)
    return so


def main():
    flags = next((l for l in open("/proc/cpuinfo") if l.startswith("flags")), "").split()
    if "avx" not in flags or "xsave" not in flags:  # Linux lists avx only where it saves the AVX state
        print("ort_avx2_test: this CPU or OS saves no AVX state: xgetbv's XCR0 has nothing to cap here")
        sys.exit(77)  # ctest SKIP_RETURN_CODE
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        lib = build(tmp, "probe", PROBE)
        out = os.path.join(tmp, "probe-avx2.so")
        run = subprocess.run([sys.executable, os.path.join(HERE, "ort_avx2.py"), "--library", lib, out],
                             capture_output=True, text=True)
        if run.returncode != 0 or "2 xgetbv patched" not in run.stdout:
            failures.append(f"patching the probe: exit {run.returncode}, {run.stdout!r} {run.stderr!r}")
        else:
            patched_bytes = open(out, "rb").read()
            if bytes.fromhex("0f01d0") in patched_bytes or patched_bytes.count(bytes.fromhex("8d4107")) < 2:
                failures.append("the patched probe still holds an xgetbv, or not both replacements")
            real = ctypes.CDLL(lib)
            capped = ctypes.CDLL(out)
            for f in (real, capped):
                f.xcr0_low.restype = ctypes.c_uint
                f.xcr0_again.restype = ctypes.c_uint
            r = real.xcr0_low()
            if r & 0x6 != 0x6:
                failures.append(f"the unpatched probe reads XCR0 0x{r:x}: no AVX state saved?")
            for got, what in ((capped.xcr0_low(), "xcr0_low"), (capped.xcr0_again(1), "xcr0_again")):
                if got != 7:
                    failures.append(f"patched {what} reads 0x{got:x}, expected 0x7")
            if real.xcr0_again(1) != r:
                failures.append("the unpatched second probe disagrees with the first")
        plain = build(tmp, "plain", "int f(int x) { return x + 1; }\n")
        dst = os.path.join(tmp, "plain-avx2.so")
        run = subprocess.run([sys.executable, os.path.join(HERE, "ort_avx2.py"), "--library", plain, dst],
                             capture_output=True, text=True)
        if run.returncode == 0 or "no xgetbv" not in run.stderr or os.path.exists(dst):
            failures.append(f"a library without xgetbv: exit {run.returncode}, {run.stderr!r}, "
                            f"{'written' if os.path.exists(dst) else 'not written'}")
    for f in failures:
        print("FAIL:", f)
    if failures:
        sys.exit(1)
    print("ort_avx2_test: ok (XCR0 0x%x unpatched, 0x7 patched at both sites)" % r)


if __name__ == "__main__":
    main()
