// The public shapes of AIClient's interface (the seed's ai-client.ts) and its protocol constants.
import { LatencySummary } from './latency';

export type PixelFormatName = 'JPEG' | 'RGB8' | 'BGR8';

export interface AIClientOptions {
  host?: string;
  port?: number;
  endpoints?: string[]; // 'host:port', tried in order
  heartbeatTimeoutMs?: number; // 10 s, as the worker's default
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  connectTimeoutMs?: number;
}

export interface InitArgs {
  model?: string; // registry name[@version] or a path inside the worker's --model-dir
  conf?: number;
  iou?: number;
  maxDet?: number;
  classes?: number[]; // empty or absent: all
  width?: number;
  height?: number;
  format?: PixelFormatName;
  clientId?: string;
  authToken?: string;
}

export interface FrameArgs {
  pixels: Uint8Array;
  width?: number;
  height?: number;
  format?: PixelFormatName;
  tsMonoNs?: bigint | number; // capture time on the monotonic clock; default now (process.hrtime)
}

export interface AIDetection {
  classId: number;
  score: number;
  x1: number;
  y1: number;
  x2: number;
  y2: number;
}

export interface AIResult {
  frameId: number;
  tsMonoNs: bigint;
  detections: AIDetection[];
  times: { decodeMs: number; preprocessMs: number; queueMs: number; inferMs: number; postprocessMs: number };
  latencyMs: number; // sendFrame() -> Result
}

export interface AIError {
  code: number;
  message: string;
  fatal: boolean;
}

export interface AIInitOk {
  modelId: string;
  inputWidth: number;
  inputHeight: number;
  classNames: string[];
  maxFrameBytes: number;
  providers: string[];
  preproc: string;
}

// The seed's client metrics, plus what a caller needs to reconcile them.
export interface AIClientStats {
  ai_init_ok_total: number;
  ai_reconnects_total: number;
  ai_frame_inflight: number; // gauge: 0 or 1
  ai_frames_sent_total: number;
  ai_drops_latestwins_total: number;
  ai_result_latency_ms: LatencySummary;
  ai_detections_total: number;
  results_total: number;
  errors_total: number;
  frames_lost_on_disconnect: number;
  endpoint: string; // the one connected (or tried last)
  connected: boolean;
}

// Protocol error codes (net/include/aitw/net/server.hpp).
export const ERR_MODEL = 7;
export const ERR_AUTH = 12;
export const ERR_DRAINING = 13;
// End reasons after which a client goes elsewhere at once.
export const MOVE_ON_REASONS = new Set(['draining', 'max_session_age']);
