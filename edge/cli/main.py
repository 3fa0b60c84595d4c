"""``edge-track``: dispatch to sub-commands; user errors become one line and exit status 2."""

from __future__ import annotations

import argparse
import sys

# Only the standard library at import time: everything heavy (OpenCV, onnxruntime) is imported
# inside main(), so a Ctrl-C while it loads is the one-line "interrupted", not a traceback.

EXIT_USAGE = 2

# Options the top-level parser takes (the desk shorthand) that sub-commands also define. argparse
# lets a sub-command's default overwrite a value given before the command name, so the top-level
# ones are stored apart and merged in _merge_top_level().
TOP_LEVEL = ("camera", "init", "roi", "model")


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the full usage is in --help)."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _register_plugins(subparsers) -> None:
    """Commands shipped by other packages of the distribution (train/: export), and extensions of
    the runtime's own (train/ adds PyTorch rows to bench)."""
    from importlib.metadata import entry_points

    from edge.errors import EdgeTrackError

    for ep in entry_points(group="edge_track.commands"):
        try:
            ep.load()(subparsers)
        except Exception as exc:  # a broken plug-in must not take the runtime down
            name = ep.name
            if name in subparsers.choices:   # it extends a runtime command, which works without it
                continue

            def unavailable(args, _name=name, _exc=exc):
                raise EdgeTrackError(f"command '{_name}' is unavailable: {_exc}")

            subparsers.add_parser(name, help=f"(unavailable: {exc})").set_defaults(func=unavailable)


def build_parser() -> argparse.ArgumentParser:
    import edge
    from edge.cli import bench, build_trt, device, evaluate, models, track, trax

    parser = OneLineParser(
        prog="edge-track",
        description="Single-object tracking on edge devices (MixFormerV2, NanoTrack, VitTrack), closed-loop "
                    "to a camera gimbal. The default tracker and the others bundled: edge-track models.")
    parser.add_argument("--version", action="version", version=f"edge-track {edge.__version__}")
    device.add_desk_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    track.register(sub)
    evaluate.register(sub)
    models.register(sub)
    build_trt.register(sub)
    bench.register(sub)
    device.register(sub)
    trax.register(sub)
    _register_plugins(sub)
    _defer_required(parser, sub)
    return parser


def _defer_required(parser, sub) -> None:
    """A required sub-command option that is also a desk option (build-trt's, quantize's --model)
    is checked after _merge_top_level, not by argparse, so ``edge-track --model m.onnx build-trt``
    counts. Noted on ``parser`` as {command: [(its parser, dest, option)]}."""
    deferred: dict = {}
    for command, sub_parser in sub.choices.items():
        for action in sub_parser._actions:
            if action.required and action.dest in TOP_LEVEL:
                if sub_parser.usage is None:   # --help still shows it required: it is, from either place
                    sub_parser.usage = sub_parser.format_usage().removeprefix("usage: ").rstrip().replace("%", "%%")
                action.required = False
                deferred.setdefault(command, []).append((sub_parser, action.dest, action.option_strings[0]))
    parser.deferred_required = deferred


def _check_deferred(parser, args) -> None:
    """argparse's own one-line usage error for a required option given neither before nor after
    the command name."""
    for sub_parser, dest, option in getattr(parser, "deferred_required", {}).get(getattr(args, "command", None), ()):
        if getattr(args, dest, None) is None:
            sub_parser.error(f"the following arguments are required: {option}")


def _check_top_level_options(parser, argv: list[str]) -> None:
    """An option before the command name that the top level does not take is named as such.
    argparse would read its value as the command ('invalid choice: 0' for ``--camra 0``)."""
    known = {opt for action in parser._actions for opt in action.option_strings}
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    for token in argv:
        if token in commands or token == "--":
            return
        name = token.split("=", 1)[0]
        if name.startswith("--") and name not in known:
            where = [c for c, p in commands.items() if name in p._option_string_actions]
            hint = f" (an option of {', '.join(repr(c) for c in where[:3])})" if where else ""
            parser.error(f"unrecognized option {name} before the command{hint}")


def _merge_top_level(parser, args) -> None:
    """Give a sub-command the desk options written before its name (``edge-track --model m.onnx
    track ...``); one it does not take, or a clash with its own value, is a usage error."""
    command = getattr(args, "command", None)
    for name in TOP_LEVEL:
        value = getattr(args, f"top_{name}")
        if command is None:
            setattr(args, name, value)
        elif value is not None:
            if not hasattr(args, name):
                parser.error(f"--{name} is not an option of '{command}'")
            own = getattr(args, name)
            if own is not None and own != value:
                parser.error(f"--{name} given twice ({value} before '{command}', {own} after it)")
            setattr(args, name, value)


def main(argv: list[str] | None = None) -> int:
    # First thing, before the imports that take a while: a stop signal is recorded from now on, not
    # the default action (edge.runtime.signals: standard library only).
    from edge.runtime.signals import hold_early, release_early

    hold_early()
    try:
        return _main(argv)
    finally:
        release_early()


def _early_stop(signum: int | None) -> int | None:
    """The exit status for a stop signal that came before the command began, or None."""
    if signum is None:
        return None
    import signal

    print("edge-track: interrupted" if signum == signal.SIGINT else
          f"edge-track: stopped by {signal.Signals(signum).name}", file=sys.stderr)
    return 128 + signum


def _main(argv: list[str] | None) -> int:
    from edge.runtime.signals import release_early, take_early

    try:
        from edge.errors import EdgeTrackError
    except KeyboardInterrupt:
        print("edge-track: interrupted", file=sys.stderr)
        return 130
    try:
        parser = build_parser()
        _check_top_level_options(parser, sys.argv[1:] if argv is None else argv)
        args = parser.parse_args(argv)
        _merge_top_level(parser, args)
        _check_deferred(parser, args)
        if getattr(args, "func", None) is None and args.camera is not None:
            from edge.cli import device

            args.func = device.run_desk
        if getattr(args, "func", None) is None:
            given = next((f"--{name}" for name in TOP_LEVEL if getattr(args, name, None) is not None), None)
            if given is not None:   # a desk option alone: say what it lacks, not the whole help
                parser.error(f"{given} needs --camera SRC (the desk shorthand) or a command, e.g. track")
            parser.print_help(sys.stderr)
            return _early_stop(release_early()) or EXIT_USAGE
        # A stop signal while the command line loaded: the command does not begin. One that polls for
        # them (StopSignals) takes the handlers over; any other gets Python's own from here on.
        polls = getattr(args.func, "handles_stop_signals", False)
        stopped = _early_stop(take_early() if polls else release_early())
        if stopped is not None:
            return stopped
        return int(args.func(args) or 0)
    except EdgeTrackError as exc:
        # One line whatever the message holds (a YAML parser's error spans several).
        print(f"edge-track: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("edge-track: interrupted", file=sys.stderr)
        return 130
    except MemoryError:   # no message of its own: say what happened, in one line, not a traceback
        print("edge-track: error: out of memory (an input far larger than expected?)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
