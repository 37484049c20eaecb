// AIClient: the edge agent's client of `aitw serve`, in the shape of the seed's ai-client.ts. Window 1: one
// frame in flight; a newer frame replaces one still waiting (latest wins, counted as a drop). Reconnects
// with exponential backoff and jitter, moving along the endpoint list, and re-Inits by itself; a worker
// that is draining (Error 13, End "draining" / "max_session_age") is left at once for the next endpoint.
// Heartbeats go out every third of the timeout, and a worker silent for the whole timeout is dropped.
import * as net from 'node:net';
import Long from 'long';

import { aitw } from '../gen/aitw';
import { Backoff } from './backoff';
import { Envelope, FrameReader, encodeFramed } from './framing';
import { LatencyWindow } from './latency';
import {
  AIClientOptions,
  AIClientStats,
  AIError,
  AIInitOk,
  AIResult,
  ERR_AUTH,
  ERR_DRAINING,
  ERR_MODEL,
  FrameArgs,
  InitArgs,
  MOVE_ON_REASONS,
} from './types';

const v1 = aitw.v1;

interface Endpoint {
  host: string;
  port: number;
  backoff: Backoff;
}

interface QueuedFrame {
  frame: aitw.v1.IFrame;
  submittedNs: bigint;
}

interface Waiter<T> {
  resolve: (v: T) => void;
  reject: (e: Error) => void;
}

export function parseEndpoint(s: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(s);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 1 && port <= 65535)) throw new Error(`endpoint '${s}': expected HOST:PORT with a port 1-65535`);
  return { host: m[1] ?? m[2], port };
}

const nowNs = () => process.hrtime.bigint();

function toBigInt(v: number | Long | null | undefined): bigint {
  if (v == null) return 0n;
  return typeof v === 'number' ? BigInt(v) : BigInt(v.toString());
}

function toNumber(v: number | Long | null | undefined): number {
  if (v == null) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

export class AIClient {
  private readonly endpoints: Endpoint[];
  private readonly heartbeatTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private endpointIndex = 0;

  private socket: net.Socket | null = null;
  private running = false;
  private everConnected = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private lastRx = 0;
  private moveOnNow = false; // the worker asked us to go elsewhere (draining)
  private refused = false; // the worker refused the token: reconnecting cannot help until init() again

  private initArgs: InitArgs | null = null;
  private initWanted = false; // an Init is owed to the current connection
  private awaitingInitOk = false;
  private initialized = false; // InitOk on the current connection
  private ready = false;
  private inflight: (QueuedFrame & { id: number }) | null = null;
  private pending: QueuedFrame | null = null;
  private nextFrameId = 1;
  private lastInitOk: AIInitOk | null = null;

  private connectWaiters: Waiter<void>[] = [];
  private initWaiters: Waiter<AIInitOk>[] = [];
  private resultCallbacks: ((r: AIResult) => void)[] = [];
  private errorCallbacks: ((e: AIError) => void)[] = [];

  private counters = {
    ai_init_ok_total: 0,
    ai_reconnects_total: 0,
    ai_frames_sent_total: 0,
    ai_drops_latestwins_total: 0,
    ai_detections_total: 0,
    results_total: 0,
    errors_total: 0,
    frames_lost_on_disconnect: 0,
  };
  private latency = new LatencyWindow();

  constructor(options: AIClientOptions) {
    const backoffInitial = options.backoffInitialMs ?? 100;
    const backoffMax = options.backoffMaxMs ?? 5000;
    let list: { host: string; port: number }[];
    if (options.endpoints && options.endpoints.length) list = options.endpoints.map(parseEndpoint);
    else if (options.port !== undefined) list = [{ host: options.host ?? '127.0.0.1', port: options.port }];
    else throw new Error('AIClient: give {host, port} or {endpoints: ["host:port", ...]}');
    for (const e of list)
      if (!Number.isInteger(e.port) || e.port < 1 || e.port > 65535)
        throw new Error(`AIClient: port ${e.port} of '${e.host}' is not 1-65535`);
    this.endpoints = list.map((e) => ({ ...e, backoff: new Backoff(backoffInitial, backoffMax) }));
    this.heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? 10000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 5000;
  }

  // Starts connecting (and keeps reconnecting until shutdown()); resolves once connected.
  connect(): Promise<void> {
    if (this.socket && !this.socket.connecting) return Promise.resolve();
    const p = new Promise<void>((resolve, reject) => this.connectWaiters.push({ resolve, reject }));
    if (!this.running) {
      this.running = true;
      this.attempt();
    }
    return p;
  }

  // Sends Init now (or, with a frame in flight, right after its Result: the worker refuses an Init then)
  // and again after every reconnect. Resolves with the InitOk; rejects when the worker refuses the model
  // or the token.
  init(args: InitArgs): Promise<AIInitOk> {
    this.initArgs = { ...args };
    this.refused = false;
    this.initWanted = true;
    const p = new Promise<AIInitOk>((resolve, reject) => this.initWaiters.push({ resolve, reject }));
    if (this.running && !this.socket && !this.retryTimer) this.attempt();
    this.sendInitIfDue();
    return p;
  }

  // True when a frame given now would go out at once (initialized, the worker's Ready in hand, nothing in
  // flight or waiting).
  canSend(): boolean {
    return this.initialized && this.ready && !this.awaitingInitOk && !this.inflight && !this.pending;
  }

  // Never blocks. Returns the frame id. A frame that cannot go out now waits, replacing any older waiting
  // frame (counted in ai_drops_latestwins_total); it also waits across a reconnect.
  sendFrame(args: FrameArgs): number {
    const id = this.nextFrameId++;
    const ts = args.tsMonoNs === undefined ? nowNs() : BigInt(args.tsMonoNs);
    const frame: aitw.v1.IFrame = {
      frameId: id,
      tsMonoNs: Long.fromString(ts.toString()),
      width: args.width ?? 0,
      height: args.height ?? 0,
      format: args.format ? v1.PixelFormat[args.format] : v1.PixelFormat.PIXEL_FORMAT_UNSPECIFIED,
      pixels: args.pixels,
    };
    if (this.pending) this.counters.ai_drops_latestwins_total += 1;
    this.pending = { frame, submittedNs: nowNs() };
    this.sendFrameIfDue();
    return id;
  }

  onResult(cb: (r: AIResult) => void): () => void {
    this.resultCallbacks.push(cb);
    return () => (this.resultCallbacks = this.resultCallbacks.filter((c) => c !== cb));
  }

  onError(cb: (e: AIError) => void): () => void {
    this.errorCallbacks.push(cb);
    return () => (this.errorCallbacks = this.errorCallbacks.filter((c) => c !== cb));
  }

  // Sends End, closes, and stops reconnecting. Pending connect()/init() promises reject.
  async shutdown(): Promise<void> {
    this.running = false;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const s = this.socket;
    if (s && !s.connecting && !s.destroyed) {
      await new Promise<void>((resolve) => s.end(encodeFramed({ end: { reason: 'client shutdown' } }), resolve));
    }
    this.dropConnection();
    const err = new Error('AIClient shut down');
    for (const w of this.connectWaiters.splice(0)) w.reject(err);
    for (const w of this.initWaiters.splice(0)) w.reject(err);
  }

  initOk(): AIInitOk | null {
    return this.lastInitOk;
  }

  stats(): AIClientStats {
    const e = this.endpoints[this.endpointIndex];
    return {
      ...this.counters,
      ai_frame_inflight: this.inflight ? 1 : 0,
      ai_result_latency_ms: this.latency.summary(),
      endpoint: `${e.host}:${e.port}`,
      connected: !!this.socket && !this.socket.connecting,
    };
  }

  // --- connection lifecycle ---------------------------------------------------------------------------

  private attempt(): void {
    this.retryTimer = null;
    if (!this.running || this.refused) return;
    const ep = this.endpoints[this.endpointIndex];
    const socket = net.createConnection({ host: ep.host, port: ep.port, noDelay: true });
    this.socket = socket;
    const reader = new FrameReader();
    socket.setTimeout(this.connectTimeoutMs, () => socket.destroy(new Error('connect timeout')));
    socket.on('connect', () => {
      socket.setTimeout(0);
      this.onConnected(ep);
    });
    socket.on('data', (chunk: Buffer) => {
      if (this.socket !== socket) return;
      this.lastRx = Date.now();
      try {
        for (const body of reader.push(chunk)) {
          let e: aitw.v1.Envelope;
          try {
            e = Envelope.decode(body);
          } catch {
            continue; // not an Envelope: skipped, as the C++ client does (the length kept the stream in step)
          }
          this.handle(e);
          if (this.socket !== socket || socket.destroyed) return; // handle() left this connection
        }
      } catch (e) {
        // The stream is out of step (or a callback threw): this connection cannot be trusted any more.
        this.emitError({ code: 0, message: `connection to ${ep.host}:${ep.port}: ${(e as Error).message}`, fatal: false });
        socket.destroy();
      }
    });
    socket.on('error', () => {}); // 'close' follows and does the work
    socket.on('close', () => {
      if (this.socket === socket) this.onDisconnected();
    });
  }

  private onConnected(ep: Endpoint): void {
    ep.backoff.reset();
    if (this.everConnected) this.counters.ai_reconnects_total += 1;
    this.everConnected = true;
    this.lastRx = Date.now();
    this.startHeartbeats();
    for (const w of this.connectWaiters.splice(0)) w.resolve();
    if (this.initArgs) this.initWanted = true; // re-Init on every (re)connect
    this.sendInitIfDue();
  }

  private onDisconnected(): void {
    this.dropConnection();
    if (!this.running || this.refused) return;
    // A draining worker: straight to the next endpoint with a fresh backoff. A failure: the next
    // endpoint after its own backoff delay.
    this.endpointIndex = (this.endpointIndex + 1) % this.endpoints.length;
    const ep = this.endpoints[this.endpointIndex];
    let delay = 0;
    if (this.moveOnNow) ep.backoff.reset();
    else delay = ep.backoff.next();
    this.moveOnNow = false;
    this.retryTimer = setTimeout(() => this.attempt(), delay);
  }

  private dropConnection(): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
    if (this.socket) {
      const s = this.socket;
      this.socket = null;
      s.destroy();
    }
    if (this.inflight) this.counters.frames_lost_on_disconnect += 1; // its Result will never come
    this.inflight = null;
    this.initialized = this.ready = this.awaitingInitOk = false;
  }

  // Leaves the current worker now; onDisconnected() goes to the next endpoint without waiting.
  private moveOn(): void {
    this.moveOnNow = true;
    this.socket?.destroy();
  }

  private startHeartbeats(): void {
    const beat = Math.max(100, Math.floor(this.heartbeatTimeoutMs / 3));
    this.heartbeatTimer = setInterval(() => {
      if (Date.now() - this.lastRx > this.heartbeatTimeoutMs) {
        this.emitError({ code: 0, message: `worker silent for ${this.heartbeatTimeoutMs} ms: reconnecting`, fatal: false });
        this.socket?.destroy();
        return;
      }
      this.write({ heartbeat: { tsMonoNs: Long.fromString(nowNs().toString()) } });
    }, beat);
    this.heartbeatTimer.unref();
  }

  private write(e: aitw.v1.IEnvelope): void {
    const s = this.socket;
    if (s && !s.connecting && !s.destroyed) s.write(encodeFramed(e));
  }

  // --- protocol -----------------------------------------------------------------------------------------

  private sendInitIfDue(): void {
    const s = this.socket;
    if (!this.initWanted || !this.initArgs || !s || s.connecting || this.inflight) return;
    const a = this.initArgs;
    this.initWanted = false;
    // Frames wait until the InitOk; a Ready already in hand stays valid (the worker sends another after the
    // InitOk, and none after a refused Init).
    this.awaitingInitOk = true;
    this.write({
      init: {
        model: a.model ?? '',
        thresholds: { conf: a.conf ?? 0, iou: a.iou ?? 0, maxDet: a.maxDet ?? 0, classes: a.classes ?? [] },
        width: a.width ?? 0,
        height: a.height ?? 0,
        format: a.format ? v1.PixelFormat[a.format] : v1.PixelFormat.PIXEL_FORMAT_UNSPECIFIED,
        clientId: a.clientId ?? '',
        authToken: a.authToken ?? '',
      },
    });
  }

  private sendFrameIfDue(): void {
    if (!this.pending || !this.initialized || !this.ready || this.awaitingInitOk || this.inflight) return;
    const q = this.pending;
    this.pending = null;
    this.ready = false;
    this.inflight = { ...q, id: toNumber(q.frame.frameId) };
    this.counters.ai_frames_sent_total += 1;
    this.write({ frame: q.frame });
  }

  private frameDone(): void {
    this.inflight = null;
    this.sendInitIfDue(); // a hot reload waits for the frame in flight
  }

  private handle(e: aitw.v1.Envelope): void {
    switch (e.msg) {
      case 'initOk': {
        const m = e.initOk!;
        this.awaitingInitOk = false;
        this.initialized = true;
        this.counters.ai_init_ok_total += 1;
        const ok: AIInitOk = {
          modelId: m.modelId ?? '',
          inputWidth: m.inputWidth ?? 0,
          inputHeight: m.inputHeight ?? 0,
          classNames: m.classNames ?? [],
          maxFrameBytes: toNumber(m.maxFrameBytes),
          providers: m.providers ?? [],
          preproc: m.preproc ?? '',
        };
        this.lastInitOk = ok;
        for (const w of this.initWaiters.splice(0)) w.resolve(ok);
        break;
      }
      case 'ready':
        this.ready = true;
        this.sendFrameIfDue();
        break;
      case 'result':
        this.onResultMessage(e.result!);
        break;
      case 'error':
        this.onErrorMessage(e.error!);
        break;
      case 'end':
        if (MOVE_ON_REASONS.has(e.end!.reason ?? '')) this.moveOn();
        else this.socket?.destroy();
        break;
      default:
        break; // heartbeats only refresh lastRx
    }
  }

  private onResultMessage(r: aitw.v1.IResult): void {
    const q = this.inflight;
    const latencyMs = q ? Number(nowNs() - q.submittedNs) / 1e6 : 0;
    const dets = (r.detections ?? []).map((d) => ({
      classId: d.classId ?? 0,
      score: d.score ?? 0,
      x1: d.x1 ?? 0,
      y1: d.y1 ?? 0,
      x2: d.x2 ?? 0,
      y2: d.y2 ?? 0,
    }));
    this.counters.results_total += 1;
    this.counters.ai_detections_total += dets.length;
    this.latency.record(latencyMs);
    const t = r.times ?? {};
    const result: AIResult = {
      frameId: toNumber(r.frameId),
      tsMonoNs: toBigInt(r.tsMonoNs),
      detections: dets,
      times: {
        decodeMs: t.decodeMs ?? 0,
        preprocessMs: t.preprocessMs ?? 0,
        queueMs: t.queueMs ?? 0,
        inferMs: t.inferMs ?? 0,
        postprocessMs: t.postprocessMs ?? 0,
      },
      latencyMs,
    };
    this.frameDone();
    for (const cb of this.resultCallbacks) cb(result);
  }

  private onErrorMessage(m: aitw.v1.IError): void {
    const err: AIError = { code: m.code ?? 0, message: m.message ?? '', fatal: !!m.fatal };
    this.counters.errors_total += 1;
    this.emitError(err);
    if (err.code === ERR_DRAINING) {
      this.moveOn(); // the Init goes to the next endpoint, promise still pending
      return;
    }
    if (this.awaitingInitOk && (err.code === ERR_MODEL || err.code === ERR_AUTH)) {
      // The answer to our Init: another try with the same arguments gets the same answer. The session
      // keeps its previous model, if it had one (a Ready for it may still be owed to us).
      this.awaitingInitOk = false;
      if (err.code === ERR_AUTH) this.refused = true; // fatal: the worker closes; do not hammer it
      for (const w of this.initWaiters.splice(0)) w.reject(Object.assign(new Error(err.message), { code: err.code }));
      this.sendFrameIfDue();
      return;
    }
    // A non-fatal error about the frame in flight ends that frame (a Ready follows).
    if (this.inflight && !err.fatal) this.frameDone();
  }

  private emitError(e: AIError): void {
    for (const cb of this.errorCallbacks) cb(e);
  }
}
