"""The generated protocol module (aitw_pb2), made from proto/aitw.proto with protoc at build time.

Nothing generated is checked in: `python3 -m aitw_client.proto` (or the first import) runs
`protoc --python_out` into clients/python/build/gen, or into $AITW_PY_GEN_DIR; it runs again when
the .proto is newer than the generated file.
"""
import importlib
import os
import subprocess
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = os.environ.get("AITW_PROTO", os.path.join(_HERE, "..", "..", "..", "proto", "aitw.proto"))
GEN_DIR = os.environ.get("AITW_PY_GEN_DIR", os.path.join(_HERE, "..", "build", "gen"))


def generate(proto=PROTO, out_dir=GEN_DIR):
    """Runs protoc on `proto` into `out_dir` when the generated module is missing or older."""
    proto = os.path.abspath(proto)
    out = os.path.join(out_dir, "aitw_pb2.py")
    if os.path.exists(out) and os.path.getmtime(out) >= os.path.getmtime(proto):
        return out
    os.makedirs(out_dir, exist_ok=True)
    cmd = ["protoc", "-I", os.path.dirname(proto), "--python_out", out_dir, os.path.basename(proto)]
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True)
    except FileNotFoundError:
        raise RuntimeError("aitw_client: protoc not found (Debian: protobuf-compiler) to generate aitw_pb2") from None
    except subprocess.CalledProcessError as e:
        raise RuntimeError(f"aitw_client: protoc failed on {proto}: {e.stderr.strip()}") from None
    return out


def load():
    generate()
    gen = os.path.abspath(GEN_DIR)
    if gen not in sys.path:
        sys.path.insert(0, gen)
    return importlib.import_module("aitw_pb2")


pb = load()

if __name__ == "__main__":
    print(generate())
