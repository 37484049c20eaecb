// The worker protocol's framing: each message is a uint32 little-endian length and that many bytes of an
// Envelope (README "The worker", proto/aitw.proto).
import { aitw } from '../gen/aitw';

export const Envelope = aitw.v1.Envelope;
export type Envelope = aitw.v1.Envelope;

// Larger than any frame a worker accepts (its --max-frame-bytes default is 4 MiB); a length above it means
// the stream is out of step, and the connection is dropped rather than buffering without bound.
export const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

export function encodeFramed(message: aitw.v1.IEnvelope): Buffer {
  const body = Envelope.encode(message).finish();
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32LE(body.length, 0);
  out.set(body, 4);
  return out;
}

// Accumulates socket chunks and yields whole message bodies, however the bytes were split.
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const bodies: Buffer[] = [];
    for (;;) {
      if (this.buffered < 4) break;
      const head = this.peek(4);
      const n = head.readUInt32LE(0);
      if (n > MAX_MESSAGE_BYTES) throw new Error(`message length ${n} exceeds ${MAX_MESSAGE_BYTES} bytes`);
      if (this.buffered < 4 + n) break;
      const all = this.take(4 + n);
      bodies.push(all.subarray(4));
    }
    return bodies;
  }

  get bufferedBytes(): number {
    return this.buffered;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0].length < n) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0].subarray(0, n);
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    this.chunks = all.length > n ? [all.subarray(n)] : [];
    this.buffered -= n;
    return all.subarray(0, n);
  }
}

// Splits a buffer of framed messages (a golden file, a recording's records) into their bodies.
export function splitFramed(bytes: Buffer): Buffer[] {
  const reader = new FrameReader();
  const bodies = reader.push(bytes);
  if (reader.bufferedBytes !== 0) throw new Error('truncated framed message');
  return bodies;
}
