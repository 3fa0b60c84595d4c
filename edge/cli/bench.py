"""``edge-track bench``: time what this device can run, side by side, in the runtime install.

The rows that need PyTorch (its baseline, engines built from ``--variant/--checkpoint``) come
from a plug-in: the ``bench`` entry of ``edge_track.commands`` (train/commands.py) adds its
options to this parser and appends a row provider to ``row_providers``. A provider is called
as ``provider(args, log)`` and returns None (not asked for) or an ``edge.bench.session.Contribution``;
``MissingExtra`` (the training extra is not installed) is printed as its one line and the runtime
rows still run; any other error ends the command as usual.
"""

from __future__ import annotations

import argparse
import sys


def _thread_list(text: str) -> list[int]:
    """argparse type: '2' or '1,2' -> [2] or [1, 2], each a positive integer."""
    try:
        counts = [int(v) for v in text.split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"expected thread counts such as 2 or 1,2, got {text!r}")
    return counts


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "bench", help="time every tracker this device can run, side by side, against OpenCV NanoTrack",
        description="Time, in one run and on the same frames, every bundled tracker (the default marked), "
                    "model files, NanoTrack folders and OpenCV's NanoTrack (and VitTrack), each in its own "
                    "process, at each thread count; prints a markdown table with each row's whole frame over "
                    "OpenCV NanoTrack's. Works in the runtime install. With the training extra, --variant / "
                    "--checkpoint add the PyTorch baseline and the engines built from it.")
    p.add_argument("--sequences", metavar="DIR",
                   help="annotated sequences (default: the bundled sample clip)")
    p.add_argument("--max-frames", type=int, default=60, metavar="N", help="frames per sequence (default 60)")
    p.add_argument("--threads", type=_thread_list, default=None, metavar="N[,N...]",
                   help="inference threads; several (e.g. 1,2) time every row at each, in one run "
                        "(default: this machine's physical cores)")
    p.add_argument("--rounds", type=int, default=1, metavar="R",
                   help="run every row R times, taking turns, and report medians over rounds "
                        "(for machines whose speed drifts; default 1)")
    p.add_argument("--pace", type=float, default=None, metavar="FPS",
                   help="give every row its frames at this rate in frames per second, as a camera does "
                        "(threads idle between frames; default: back to back)")
    p.add_argument("--engines", nargs="*", metavar="NAME",
                   help="only rows whose name contains one of these (default: every row)")
    p.add_argument("--model", metavar="NAME|PATH",
                   help="time this tracker (a bundled name, a model file or a NanoTrack folder) as the "
                        "'default-model' row instead of every bundled tracker (default: every bundled tracker)")
    p.add_argument("--extra-model", action="append", default=[], metavar="MODEL",
                   help="also time this model file (e.g. a QAT export; repeatable; default: none)")
    p.add_argument("--nanotrack-dir", metavar="DIR",
                   help="NanoTrack's two ONNX files for OpenCV's NanoTrack row (default: "
                        "$EDGE_TRACK_NANOTRACK_DIR, else ../shared/models/opencv if present)")
    p.add_argument("--upstream-nanotrack", action="append", default=[], metavar="DIR",
                   help="also time NanoTrack's own tracking loop on onnxruntime on the two files in DIR "
                        "(V2 or V3; repeatable; default: none), beside OpenCV's")
    p.add_argument("--vittrack-model", metavar="FILE",
                   help="also time VitTrack (this ONNX file) through OpenCV's cv2.TrackerVit and the runtime's "
                        "own loop (default: no VitTrack rows)")
    p.add_argument("--no-profile", action="store_true",
                   help="skip the onnxruntime operator profile of the fastest INT8 engine (default: profile it)")
    p.add_argument("--workdir", metavar="DIR", help="keep the models built for the run here (default: a temp folder)")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON (default: none)")
    p.add_argument("--plot", metavar="PNG", help="also draw frame time against accuracy (default: none)")
    p.set_defaults(func=run, row_providers=[])
    return p


def run(args: argparse.Namespace) -> int:
    import json
    import os

    from edge.bench import session
    from edge.bench.report import format_table, plot_png
    from edge.bench.rows import extra_model_rows, runtime_rows
    from edge.errors import MissingExtra
    from edge.sample import SAMPLE_DIR

    def log(message):
        print(message, file=sys.stderr)

    skipped: dict = {}
    contribution = None
    for provider in args.row_providers:
        try:
            contribution = provider(args, log) or contribution
        except MissingExtra as exc:         # say which extra the PyTorch rows need, and time the rest
            log(f"bench: {exc}")
            skipped["pytorch rows"] = str(exc)
    rows = runtime_rows(skipped, model=args.model, nanotrack_dir=args.nanotrack_dir,
                        upstream_nanotrack=tuple(args.upstream_nanotrack), vittrack_model=args.vittrack_model)
    sequences = args.sequences or os.path.dirname(SAMPLE_DIR)
    report = session.run_bench(rows, sequences, threads=args.threads, max_frames=args.max_frames,
                               workdir=args.workdir, only=args.engines, extra_rows=extra_model_rows(args.extra_model),
                               log=log, profile=not args.no_profile, rounds=args.rounds, pace_fps=args.pace,
                               skipped=skipped, contribution=contribution)
    print(format_table(report))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
    if args.plot:
        plot_png(report, args.plot)
    return 0
