"""The worker protocol's framing: a uint32 little-endian length, then that many bytes of an Envelope."""
import struct

# Larger than any frame a worker accepts (its --max-frame-bytes default is 4 MiB): a length above it
# means the stream is out of step, and the connection is dropped rather than buffered without bound.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def encode_framed(message) -> bytes:
    body = message.SerializeToString()
    return struct.pack("<I", len(body)) + body


def split_framed(data: bytes) -> list:
    """The message bodies of a buffer of framed messages (a golden file, a recording's records)."""
    bodies, at = [], 0
    while at < len(data):
        if len(data) - at < 4:
            raise ValueError(f"truncated length prefix at byte {at}")
        (n,) = struct.unpack_from("<I", data, at)
        at += 4
        if len(data) - at < n:
            raise ValueError(f"message of {n} bytes truncated at byte {at}")
        bodies.append(data[at:at + n])
        at += n
    return bodies


async def read_message(reader) -> bytes:
    """One message body from an asyncio StreamReader (IncompleteReadError at the end of the stream)."""
    (n,) = struct.unpack("<I", await reader.readexactly(4))
    if n > MAX_MESSAGE_BYTES:
        raise ValueError(f"message length {n} exceeds {MAX_MESSAGE_BYTES} bytes")
    return await reader.readexactly(n)
