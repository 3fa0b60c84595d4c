"""``edge-track``: dispatch to sub-commands; user errors become one line and exit status 2."""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import entry_points

import edge
from edge.cli import build_trt, device, evaluate, track
from edge.errors import EdgeTrackError

EXIT_USAGE = 2


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the full usage is in --help)."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _register_plugins(subparsers) -> None:
    """Commands shipped by other packages of the distribution (train/: export)."""
    for ep in entry_points(group="edge_track.commands"):
        try:
            ep.load()(subparsers)
        except Exception as exc:  # a broken plug-in must not take the runtime down
            name = ep.name

            def unavailable(args, _name=name, _exc=exc):
                raise EdgeTrackError(f"command '{_name}' is unavailable: {_exc}")

            subparsers.add_parser(name, help=f"(unavailable: {exc})").set_defaults(func=unavailable)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="edge-track",
        description="MixFormerV2 single-object tracking on edge devices.")
    parser.add_argument("--version", action="version", version=f"edge-track {edge.__version__}")
    device.add_desk_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    track.register(sub)
    evaluate.register(sub)
    build_trt.register(sub)
    device.register(sub)
    _register_plugins(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None and args.camera is not None:
        args.func = device.run_desk
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except EdgeTrackError as exc:
        print(f"edge-track: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("edge-track: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
