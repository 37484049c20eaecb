// Streams a folder of JPEGs (or a video, through ffmpeg when it is installed) to a worker at a chosen fps
// and prints each result's detections and latency, then the client's metrics.
//   npm run build && node dist/examples/camera.js --server 127.0.0.1:7070 --dir ../../../shared/datasets/coco128/images/train2017 --fps 12
//   node dist/examples/camera.js --server a:7070,b:7070 --video clip.mp4 --fps 12 --model yolov8n --frames 100
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AIClient } from '..';

function flag(name: string, fallback?: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

function usage(message: string): never {
  console.error(`camera: ${message}`);
  console.error('usage: camera --server HOST:PORT[,HOST:PORT...] (--dir FOLDER | --video FILE) [--fps 12] ' +
    '[--model yolo11n] [--conf 0.25] [--frames N] [--token-file FILE]');
  process.exit(2);
}

// JPEG frames from a folder (sorted, looped) or from ffmpeg's MJPEG stream of a video.
async function* frames(dir?: string, video?: string, fps = 12): AsyncGenerator<Buffer> {
  if (dir) {
    const files = fs.readdirSync(dir).filter((f) => /\.jpe?g$/i.test(f)).sort();
    if (!files.length) usage(`no .jpg files in '${dir}'`);
    for (let i = 0; ; i = (i + 1) % files.length) yield fs.readFileSync(path.join(dir, files[i]));
  }
  const ff = spawn('ffmpeg', ['-loglevel', 'error', '-i', video!, '-vf', `fps=${fps}`, '-f', 'image2pipe', '-c:v', 'mjpeg', '-q:v', '4', '-']);
  ff.on('error', () => usage('--video needs ffmpeg on PATH (apt-get install ffmpeg), or use --dir'));
  let buf = Buffer.alloc(0);
  for await (const chunk of ff.stdout) {
    buf = Buffer.concat([buf, chunk as Buffer]);
    // ffmpeg's MJPEG frames carry no thumbnails: each ends at the first EOI marker.
    for (let end = buf.indexOf(Buffer.from([0xff, 0xd9])); end >= 0; end = buf.indexOf(Buffer.from([0xff, 0xd9]))) {
      yield buf.subarray(0, end + 2);
      buf = buf.subarray(end + 2);
    }
  }
}

async function main() {
  const servers = flag('server') ?? usage('--server is required');
  const dir = flag('dir');
  const video = flag('video');
  if (!dir === !video) usage('give one of --dir or --video');
  const fps = Number(flag('fps', '12'));
  if (!(fps > 0)) usage('--fps must be a number above 0');
  const limit = Number(flag('frames', '0'));
  const tokenFile = flag('token-file');

  const client = new AIClient({ endpoints: servers.split(',') });
  let names: string[] = [];
  client.onResult((r) => {
    const dets = r.detections.map((d) => `${names[d.classId] ?? d.classId} ${d.score.toFixed(2)}`).join(', ');
    console.log(`frame ${r.frameId}: ${r.latencyMs.toFixed(1)} ms, ${r.detections.length} detections${dets ? `: ${dets}` : ''}`);
  });
  client.onError((e) => console.error(`error ${e.code}${e.fatal ? ' (fatal)' : ''}: ${e.message}`));
  await client.connect();
  const ok = await client.init({
    model: flag('model', 'yolo11n'),
    conf: Number(flag('conf', '0.25')),
    format: 'JPEG',
    clientId: 'camera-example',
    authToken: tokenFile ? fs.readFileSync(tokenFile, 'utf8').trim() : undefined,
  });
  names = ok.classNames;
  console.log(`model ${ok.modelId.slice(0, 12)}, input ${ok.inputWidth}x${ok.inputHeight}`);

  const period = 1000 / fps;
  const t0 = Date.now();
  let n = 0;
  for await (const jpeg of frames(dir, video, fps)) {
    client.sendFrame({ pixels: jpeg, format: 'JPEG' }); // never blocks: the newest frame wins
    n += 1;
    if (limit && n >= limit) break;
    const wait = t0 + n * period - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  // The last frames' results (the one in flight, then the one waiting), for up to 10 s.
  for (const deadline = Date.now() + 10000; client.stats().ai_frame_inflight && Date.now() < deadline; )
    await new Promise((r) => setTimeout(r, 20));
  console.log(JSON.stringify(client.stats(), null, 1));
  await client.shutdown();
}

main().catch((e) => {
  console.error(`camera: ${e.message}`);
  process.exit(1);
});
