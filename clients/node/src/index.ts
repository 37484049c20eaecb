export { AIClient } from './client';
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
} from './client';
export { encodeFramed, splitFramed, FrameReader, Envelope } from './framing';
export { aitw } from '../gen/aitw';
