export { AIClient, parseEndpoint } from './client';
export { ERR_MODEL, ERR_AUTH, ERR_DRAINING } from './types';
export type {
  AIClientOptions,
  InitArgs,
  FrameArgs,
  AIResult,
  AIDetection,
  AIError,
  AIInitOk,
  AIClientStats,
  PixelFormatName,
} from './types';
export { encodeFramed, splitFramed, FrameReader, Envelope } from './framing';
export { aitw } from '../gen/aitw';
