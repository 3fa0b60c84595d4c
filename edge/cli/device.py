"""``edge-track run``, the desk shorthand ``edge-track --camera 0``, ``edge-track sim`` and
``edge-track config check|show``."""

from __future__ import annotations

import json
import math
import sys

from edge.cli.common import check_roi, non_negative_float, positive_float
from edge.config import dump_defaults, load_config, load_config_file


def register(subparsers) -> None:
    p = subparsers.add_parser("run", help="the device loop: camera -> tracker -> gimbal outputs (systemd-ready)",
                              description="Run the tracking loop from a device YAML (see 'edge-track config show').")
    p.add_argument("--config", required=True, metavar="device.yaml",
                   help="the device config: camera, model, target, outputs, telemetry (see 'config show'; "
                        "'config check FILE' runs every start-up check). Dry run: outputs [{type: log}] (the "
                        "default) or the web console's Dry-run switch track and log commands, no motion sent. "
                        "Web console: web: {enabled: true, port: 8080} in the config, then http://127.0.0.1:8080 "
                        "(another bind address prints its token). Exit status: 0 at the end of a video file or "
                        "folder; 2 for a config mistake (one line, nothing opened or moved); 128+n on signal n "
                        "(130 Ctrl-C, 143 systemctl stop, 129 SIGHUP); other non-zero for an error while running "
                        "(logged). Every exit stops the outputs first (docs: device/reliability.md)")
    p.set_defaults(func=run_config)

    c = subparsers.add_parser("config", help="check a device config, or print the defaults")
    csub = c.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = csub.add_parser("check", help="run every check 'run' makes before it starts (model, source, paths, "
                                          "output libraries) on FILE; one line naming the first problem")
    check.add_argument("file", metavar="FILE", help="the device YAML to check (what 'run --config' takes)")
    check.set_defaults(func=config_check)
    show = csub.add_parser("show", help="print the default configuration as YAML")
    show.set_defaults(func=config_show)

    s = subparsers.add_parser("sim", help="closed-loop simulator: a virtual pan-tilt camera driven by the real loop",
                              description="Run the real loop against a simulated pan-tilt camera and report "
                                          "centring error, re-acquisition time and command smoothness.")
    s.add_argument("--config", metavar="device.yaml",
                   help="controller gains etc. (default: the built-in defaults, as 'config show' prints)")
    s.add_argument("--tracker", choices=["oracle", "model", "mixformer", "nanotrack"], default="oracle",
                   help="oracle (default): the simulator's true box, which tests the control loop alone; model: "
                        "the device's tracker (--model, else the config's, else the default; mixformer is its old "
                        "name); nanotrack: OpenCV's TrackerNano as a peer")
    s.add_argument("--model", metavar="NAME|PATH", help="for --tracker model: a bundled tracker's name or a path "
                                                        "(default: the config's model.path, else the default tracker)")
    s.add_argument("--nanotrack-dir", metavar="DIR",
                   help="for --tracker nanotrack: the folder with NanoTrack's two ONNX files (required there)")
    s.add_argument("--path", choices=["lissajous", "random", "still"], default="lissajous",
                   help="how the target moves (default lissajous)")
    s.add_argument("--seconds", type=positive_float, default=20.0, metavar="S",
                   help="simulated time in seconds (default 20)")
    s.add_argument("--delay", type=non_negative_float, default=0.05, metavar="S",
                   help="gimbal response delay in seconds (default 0.05)")
    s.add_argument("--occlude", metavar="START:END", action="append", default=[],
                   help="hide the target from START to END, seconds of simulated time; may be repeated "
                        "(default: never)")
    s.add_argument("--json", metavar="PATH", help="also write the report as JSON (default: none)")
    s.set_defaults(func=run_sim_command)


def add_desk_options(parser) -> None:
    # dest top_*: see TOP_LEVEL in edge/cli/main.py (a sub-command's default must not win).
    parser.add_argument("--camera", dest="top_camera", metavar="SRC",
                        help="desk shorthand: track from this camera/video with defaults")
    parser.add_argument("--init", dest="top_init", metavar="x,y,w,h", help="with --camera: the target box")
    parser.add_argument("--roi", dest="top_roi", metavar="center:WxH", help="with --camera: a centred target box")
    parser.add_argument("--model", dest="top_model", metavar="NAME|PATH",
                        help="the tracker: a bundled tracker's name (edge-track models) or a path (default: the "
                             "default tracker); before a command, the same as its --model")


def run_config(args) -> int:
    from edge.runtime.service import run_device
    from edge.runtime.telemetry import setup_logging

    setup_logging()
    return run_device(load_config_file(args.config))


run_config.handles_stop_signals = True   # StopSignals: a signal during the imports is taken over


# The config keys the desk shorthand fills from flags: an error about one names the flag typed.
DESK_KEYS = {"camera.source": "--camera", "model.path": "--model"}


def run_desk(args) -> int:
    """``edge-track --camera SRC --init x,y,w,h``: the device loop on SRC with defaults, a window
    where there is a display. Unlike ``run`` (unattended: cameras are waited for, and a target may
    come later from an output or the web console) every mistake here ends the run at once, in one
    line naming the flag."""
    from edge.camera import open_source
    from edge.camera.opencv import quiet_opencv_log
    from edge.errors import ConfigError, SourceError
    from edge.runtime.service import run_device
    from edge.runtime.telemetry import setup_logging

    if args.init and args.roi:
        raise ConfigError("give --init x,y,w,h or --roi center:WxH, not both")
    if not (args.init or args.roi):
        # Only a log output here: no target command can ever arrive, the run would idle.
        raise ConfigError(f"--camera {args.camera}: what to track? give --init x,y,w,h (the target's box, "
                          "pixels) or --roi center:WxH (a box in the middle of the frame)")
    if args.roi:
        check_roi(args.roi)
    flags = {**DESK_KEYS, "tracking.init": "--init" if args.init else "--roi"}
    quiet_opencv_log()
    try:
        # start_timeout_s: the camera has just opened once (below); the service's 30 s wait is for boot.
        cfg = load_config({"camera": {"source": str(args.camera), "start_timeout_s": 5.0},
                           "model": {"path": args.model or ""}, "tracking": {"init": args.init or args.roi},
                           "outputs": [{"type": "log"}]})
        # Open it once, now, before the model loads: a camera that is not there is a typo or a cable
        # to plug in, said at once, not after the service's retries (those are for a camera still booting).
        try:
            open_source(cfg.camera.source).close()
        except SourceError as exc:
            raise SourceError(f"--camera {args.camera}: {exc}") from None
        setup_logging()
        return run_device(cfg, show=True, target_source=flags["tracking.init"])
    except ConfigError as exc:
        raise _naming_flag(exc, flags) from None


run_desk.handles_stop_signals = True   # StopSignals: a signal during the imports is taken over


def _naming_flag(exc: Exception, flags: dict) -> Exception:
    """``exc`` with a leading config key that came from a flag replaced by that flag."""
    from edge.errors import ConfigError

    text = str(exc)
    for key, flag in flags.items():
        if text.startswith(f"{key}:"):
            return ConfigError(flag + text[len(key):])
    return exc


def config_check(args) -> int:
    """Every check `run` makes before READY (edge.runtime.preflight), so what passes here starts."""
    import signal

    from edge.runtime.preflight import preflight
    from edge.runtime.signals import Stopped, StopSignals

    cfg = load_config_file(args.file)
    try:
        with StopSignals() as signals:   # pymavlink's import would swallow a Ctrl-C: checked after each step
            checked = preflight(cfg, signals.check)
    except Stopped:
        if signals.signum == signal.SIGINT:
            raise KeyboardInterrupt from None
        return signals.exit_status()
    waits = " (a camera: run waits for it)" if checked.live else ""
    print(f"{args.file}: OK ({len(cfg.outputs)} output(s), camera {cfg.camera.source}{waits}, "
          f"model {checked.tracker.info.model} on {checked.tracker.info.engine})")
    return 0


config_check.handles_stop_signals = True   # StopSignals: a signal during the imports is taken over


def config_show(args) -> int:
    sys.stdout.write(dump_defaults())
    return 0


def run_sim_command(args) -> int:
    from edge.sim.run import OracleTracker, run_sim
    from edge.sim.world import SimConfig

    occlusions = [parse_occlusion(text, args.seconds) for text in args.occlude]
    device = load_config_file(args.config) if args.config else load_config({})
    sim = SimConfig(path=args.path, delay_s=args.delay, occlusions=tuple(occlusions))

    if args.tracker == "oracle":
        def factory(world):
            return OracleTracker(world)
    elif args.tracker == "nanotrack":
        from edge.evaluation.peers import create_peer

        peer = create_peer("nanotrack", args.nanotrack_dir)

        def factory(world):
            return peer
    else:
        from edge.build import tracker_for_config

        device.model.path = args.model or device.model.path

        def factory(world):
            return tracker_for_config(device)

    report = run_sim(sim, device, factory, seconds=args.seconds)
    d = report.as_dict()
    reacquire = ", ".join("never" if t is None else f"{t:.2f} s" for t in d["reacquire_s"])
    print(f"sim ({args.tracker}, {args.path}, {report.frames} frames): "
          f"centring error mean {d['mean_error_deg']:.2f} deg, "
          f"p95 {d['p95_error_deg']:.2f} deg, max {d['max_error_deg']:.2f} deg; "
          + (f"re-acquire {reacquire}; " if reacquire else "")
          + f"smoothness {d['smoothness_dps']:.2f} deg/s per frame; max rate {d['max_rate_dps']:.1f} deg/s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(d, f, indent=2)
    return 0


def parse_occlusion(text: str, seconds: float) -> tuple[float, float]:
    """'START:END' (seconds) -> a hiding interval that starts and ends inside the run."""
    from edge.errors import ConfigError

    try:
        start, end = (float(v) for v in text.split(":"))
    except ValueError:
        raise ConfigError(f"--occlude must be START:END in seconds, got {text!r}") from None
    if not (math.isfinite(start) and math.isfinite(end) and 0 <= start < end):
        raise ConfigError(f"--occlude {text}: needs 0 <= START < END (seconds)")
    if start >= seconds:
        raise ConfigError(f"--occlude {text} starts after the run ends (--seconds {seconds:g})")
    return start, end
