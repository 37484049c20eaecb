#!/usr/bin/python3
"""Streams a folder of JPEGs (or a video, through ffmpeg when it is installed) to a worker at a chosen fps
and prints each result's detections and latency, then the client's metrics.

    /usr/bin/python3 examples/camera.py --server 127.0.0.1:7070 --dir ../../../shared/datasets/coco128/images/train2017 --fps 12
    /usr/bin/python3 examples/camera.py --server a:7070,b:7070 --video clip.mp4 --fps 12 --model yolov8n --frames 100
"""
import argparse
import asyncio
import itertools
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from aitw_client import AIClient, AIError  # noqa: E402


def folder_frames(folder):
    files = sorted(f for f in os.listdir(folder) if f.lower().endswith((".jpg", ".jpeg")))
    if not files:
        sys.exit(f"camera: no .jpg files in '{folder}'")
    for name in itertools.cycle(files):
        with open(os.path.join(folder, name), "rb") as f:
            yield f.read()


async def video_frames(video, fps):
    if not shutil.which("ffmpeg"):
        sys.exit("camera: --video needs ffmpeg on PATH (apt-get install ffmpeg), or use --dir")
    ff = await asyncio.create_subprocess_exec(
        "ffmpeg", "-loglevel", "error", "-i", video, "-vf", f"fps={fps}", "-f", "image2pipe", "-c:v", "mjpeg",
        "-q:v", "4", "-", stdout=asyncio.subprocess.PIPE)
    buf = b""
    while chunk := await ff.stdout.read(1 << 16):
        buf += chunk
        # ffmpeg's MJPEG frames carry no thumbnails: each ends at the first EOI marker.
        while (end := buf.find(b"\xff\xd9")) >= 0:
            yield buf[:end + 2]
            buf = buf[end + 2:]


async def frames(args):
    if args.dir:
        for jpeg in folder_frames(args.dir):
            yield jpeg
    else:
        async for jpeg in video_frames(args.video, args.fps):
            yield jpeg


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--server", required=True, help="HOST:PORT[,HOST:PORT...] (tried in order)")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--dir", help="folder of JPEGs (sorted, looped)")
    src.add_argument("--video", help="video file, decoded by ffmpeg")
    ap.add_argument("--fps", type=float, default=12.0)
    ap.add_argument("--model", default="yolo11n")
    ap.add_argument("--conf", type=float, default=0.25)
    ap.add_argument("--frames", type=int, default=0, help="stop after N frames (0: never)")
    ap.add_argument("--token-file", help="file holding the worker's auth token")
    args = ap.parse_args()
    if args.fps <= 0:
        ap.error("--fps must be above 0")
    token = ""
    if args.token_file:
        with open(args.token_file) as f:
            token = f.read().strip()

    client = AIClient(endpoints=args.server.split(","))
    names = []

    def on_result(r):
        dets = ", ".join(f"{names[d['class_id']] if d['class_id'] < len(names) else d['class_id']} {d['score']:.2f}"
                         for d in r["detections"])
        print(f"frame {r['frame_id']}: {r['latency_ms']:.1f} ms, {len(r['detections'])} detections"
              + (f": {dets}" if dets else ""), flush=True)

    client.on_result(on_result)
    client.on_error(lambda e: print(f"error {e.code}{' (fatal)' if e.fatal else ''}: {e.message}", file=sys.stderr))
    await client.connect()
    try:
        ok = await client.init(model=args.model, conf=args.conf, format="JPEG", client_id="camera-example",
                               auth_token=token)
    except AIError as e:
        sys.exit(f"camera: Init refused: {e.message}")
    names = list(ok.class_names)
    print(f"model {ok.model_id[:12]}, input {ok.input_width}x{ok.input_height}")

    loop = asyncio.get_running_loop()
    t0, n = loop.time(), 0
    async for jpeg in frames(args):
        client.send_frame(jpeg, format="JPEG")  # never blocks: the newest frame wins
        n += 1
        if args.frames and n >= args.frames:
            break
        await asyncio.sleep(max(0.0, t0 + n / args.fps - loop.time()))
    deadline = loop.time() + 10  # the last frames' results (in flight, then waiting), for up to 10 s
    while client.stats()["ai_frame_inflight"] and loop.time() < deadline:
        await asyncio.sleep(0.02)
    print(json.dumps(client.stats(), indent=1))
    await client.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
