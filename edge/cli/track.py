"""``edge-track track``: follow one target through a video, an image folder or a camera."""

from __future__ import annotations

import os
import sys
import time

from edge.build import describe, open_named_tracker
from edge.camera import open_source, source_kind
from edge.camera.opencv import quiet_opencv_log
from edge.cli.common import add_model_option, add_tracker_overrides, check_roi, positive_int, tracker_overrides
from edge.errors import ConfigError, SourceError
from edge.evaluation.datasets import TRACK_CSV_HEADER as CSV_HEADER
from edge.io.paths import check_writable_file
from edge.io.progress import Progress
from edge.io.video_out import SUFFIXES, VideoOut, check_video_path
from edge.sample import SAMPLE_FRAMES, first_box_beside
from edge.target import box_from_option, target_from_option
from edge.trackers.lost_search import LostSearch
from edge.trackers.overlay import draw
from edge.trackers.state import TrackResult, TrackState


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "track", help="track one target through a video, image folder or camera",
        description="Track one target. Writes one CSV row per frame (frame 0 = the init box) and "
                    "optionally an annotated video.")
    p.add_argument("--video", default=SAMPLE_FRAMES, metavar="SRC",
                   help="video file, folder of images (sorted by name) or camera index "
                        "(default: the bundled sample clip)")
    p.add_argument("--init", metavar="x,y,w,h",
                   help="target box in the first frame, pixels (default: the first ground-truth box "
                        "when SRC is an annotated folder such as the sample)")
    p.add_argument("--roi", metavar="center:WxH",
                   help="instead of --init: a box of W x H pixels in the middle of the first frame")
    add_model_option(p, "tracker to run")
    add_tracker_overrides(p)
    p.add_argument("--csv", metavar="PATH", help="write x,y,w,h,score,state per frame, pixels (default: none)")
    p.add_argument("--out", metavar="PATH", help=f"write an annotated video ({', '.join(SUFFIXES)}; default: none)")
    p.add_argument("--max-frames", type=positive_int, metavar="N",
                   help="stop after N frames (default: the whole source)")
    p.set_defaults(func=run)


def check_output_paths(args) -> None:
    """Refuse --csv/--out paths that cannot be written before the model loads (and before OpenCV
    prints its own assertion for a file type it has no writer for): the same checks as the
    config's track log and recording."""
    for option, path, check in (("--csv", args.csv, check_writable_file), ("--out", args.out, check_video_path)):
        if path:
            try:
                check(path)
            except ValueError as exc:
                raise ConfigError(f"{option}: {exc}") from None


def make_output_folders(args) -> None:
    """Create the missing folders of --csv and --out (checked: they may be), saying so: a typo in
    a folder name should not go unnoticed."""
    for option, path in (("--csv", args.csv), ("--out", args.out)):
        folder = os.path.dirname(os.path.abspath(path)) if path else ""
        if folder and not os.path.isdir(folder):
            try:
                os.makedirs(folder)
            except OSError as exc:
                raise ConfigError(f"{option}: cannot create folder {folder} ({exc.strerror})") from None
            print(f"created folder {folder} for {option}", file=sys.stderr)


def open_csv(path: str):
    try:
        return open(path, "w", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write --csv {path} ({exc.strerror})") from None


def _csv_row(result: TrackResult) -> str:
    x, y, w, h = result.box
    return f"{x:.3f},{y:.3f},{w:.3f},{h:.3f},{result.score:.5f},{result.state.value}\n"


def run(args) -> int:
    source_kind(args.video)   # a video that is not there is the first thing to say, before "--init"
    if args.init and args.roi:
        raise ConfigError("give --init x,y,w,h or --roi center:WxH, not both")
    if args.roi:
        check_roi(args.roi)
    init_box = box_from_option(args.init, "--init") if args.init else None
    if init_box is None and not args.roi:
        init_box = first_box_beside(args.video) if os.path.isdir(args.video) else None
        if init_box is None:
            raise ConfigError(f"--init x,y,w,h (or --roi center:WxH) is required for {args.video} (only an "
                              "annotated sequence folder gives its own first box)")
    check_output_paths(args)
    make_output_folders(args)
    opened, path, entry = open_named_tracker(args.model, threads=args.threads, **tracker_overrides(args))
    tracker = LostSearch(opened)   # the device's per-frame step: the search widens while LOST
    quiet_opencv_log()   # a camera that does not open is our one line, not OpenCV's WARN per backend tried
    try:
        source = open_source(args.video)
    except SourceError as exc:
        raise SourceError(f"--video {args.video}: {exc}") from None
    try:
        total = len(source)
    except TypeError:
        total = None
    if args.max_frames:
        total = min(total, args.max_frames) if total else args.max_frames

    csv_file = open_csv(args.csv) if args.csv else None
    video = None
    progress = Progress(total, label="track")
    counts = {"frames": 0, "lost": 0}
    spent = 0.0
    try:
        if csv_file:
            csv_file.write(CSV_HEADER + "\n")
        for frame in source:
            if args.max_frames and frame.index >= args.max_frames:
                break
            if frame.index == 0:
                height, width = frame.image.shape[:2]
                result = tracker.init(frame.image, init_box or target_from_option(args.roi, width, height, "--roi"))
                if args.out:
                    height, width = frame.image.shape[:2]
                    video = VideoOut(args.out, 25.0, (width, height))
            else:
                start = time.perf_counter()
                result = tracker.update(frame.image)
                spent += time.perf_counter() - start
            counts["frames"] += 1
            counts["lost"] += result.state is TrackState.LOST
            if csv_file:
                csv_file.write(_csv_row(result))
                csv_file.flush()  # a crash or power cut keeps every row written so far
            if video:
                video.write(draw(frame.image, result))
            progress.advance()
    finally:
        progress.close()
        source.close()
        if csv_file:
            csv_file.close()
        if video:
            video.close()
    if counts["frames"] == 0:
        raise SourceError(f"no frames read from {args.video}")
    fps = (counts["frames"] - 1) / spent if spent > 0 else float("nan")
    print(f"tracked {counts['frames']} frames ({counts['lost']} LOST) at {fps:.1f} FPS "
          f"[{describe(opened, path, entry)}]"
          + (f"; csv: {args.csv}" if args.csv else "") + (f"; video: {args.out}" if args.out else ""),
          file=sys.stdout)
    return 0
