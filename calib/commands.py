"""``edge-track calibrate <step>``: the offline calibration steps, each writing one file."""

from __future__ import annotations

import contextlib
import math
import os
import sys

from edge.errors import ConfigError


def register(subparsers) -> None:
    p = subparsers.add_parser("calibrate",
                              help="offline calibration: intrinsics, pixel-to-angle, gimbal, latency, pid, int8",
                              description="Run once per camera and gimbal before the service goes live.")
    steps = p.add_subparsers(dest="step", metavar="STEP", required=True)

    s = steps.add_parser("intrinsics", help="K and distortion from chessboard views -> YAML for camera.calibration")
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--images", metavar="DIR", help="folder of board photos")
    src.add_argument("--source", metavar="SRC", help="camera or video: every --every-th frame")
    s.add_argument("--board", required=True, metavar="COLSxROWS",
                   help="chessboard: inner corners, e.g. 9x6; with --charuco: squares, e.g. 7x5")
    s.add_argument("--charuco", action="store_true", help="a ChArUco board (needs opencv-contrib; partial views work)")
    s.add_argument("--marker", type=float, default=0.75, help="ChArUco marker side, units of --square (default 0.75)")
    s.add_argument("--dictionary", default="DICT_4X4_50", help="ChArUco ArUco dictionary (default DICT_4X4_50)")
    s.add_argument("--square", type=float, default=1.0, help="square size (units of the extrinsics; default 1)")
    s.add_argument("--fisheye", action="store_true", help="cv2.fisheye model for wide-angle lenses")
    s.add_argument("--views", type=int, default=30, help="with --source: views to take (default 30)")
    s.add_argument("--every", type=int, default=15, help="with --source: take every N-th frame (default 15)")
    s.add_argument("--min-views", type=int, default=8,
                   help="fewest usable board views to accept a calibration (default 8)")
    s.add_argument("--sensor-mode", default="",
                   help="recorded in the file, e.g. '1640x1232 binned' (default: none recorded)")
    s.add_argument("--output", "-o", required=True, metavar="camera.yaml",
                   help="where to write the intrinsics YAML (for the device config's camera.calibration)")
    s.set_defaults(func=run_intrinsics)

    s = steps.add_parser("pixel-to-angle", help="print the yaw/pitch of a pixel, as the controller computes it")
    s.add_argument("--calibration", metavar="camera.yaml", help="intrinsics (default: the FOV below)")
    s.add_argument("--size", metavar="WxH", default="640x480", help="the stream's frame size (default 640x480)")
    s.add_argument("--hfov", type=float, default=62.2, metavar="DEG",
                   help="horizontal field of view in degrees, without --calibration (default 62.2: Pi camera v2)")
    s.add_argument("--vfov", type=float, default=48.8, metavar="DEG",
                   help="vertical field of view in degrees, without --calibration (default 48.8: Pi camera v2)")
    s.add_argument("--pixel", required=True, metavar="x,y", action="append",
                   help="a pixel of the frame, in pixels from the top-left corner (repeatable)")
    s.set_defaults(func=run_pixel_to_angle)

    for name, helptext in (("gimbal", "fit axis signs, rate gains and camera roll by moving the head"),
                           ("latency", "command-to-motion delay from step moves"),
                           ("pid", "suggest controller gains for the measured head and check them in the simulator")):
        s = steps.add_parser(name, help=helptext)
        where = s.add_mutually_exclusive_group(required=name != "pid")
        where.add_argument("--config", metavar="device.yaml", help="the real head: its outputs, camera and model")
        where.add_argument("--sim", action="store_true", help="the simulated head (see --sim-* options)")
        s.add_argument("--init", metavar="x,y,w,h",
                       help="with --config: the still target's box (default: centre 100x100)")
        rate = 8.0 if name == "gimbal" else 20.0
        s.add_argument("--rate", type=float, default=rate, metavar="DEG/S",
                       help=f"test rate in degrees per second (default {rate:g})")
        s.add_argument("--sim-delay", type=float, default=0.05, metavar="S",
                       help="with --sim: command-to-motion delay of the simulated head, in seconds (default 0.05)")
        s.add_argument("--sim-gains", default="1,1", metavar="PAN,TILT",
                       help="with --sim: how much the simulated head turns per degree commanded (default 1,1)")
        s.add_argument("--sim-signs", default="1,1", metavar="PAN,TILT",
                       help="with --sim: the simulated head's axis directions, 1 or -1 (default 1,1)")
        s.add_argument("--sim-roll", type=float, default=0.0, metavar="DEG",
                       help="with --sim: the camera's roll on the simulated head, in degrees (default 0)")
        s.add_argument("--profile", required=True, metavar="gimbal.yaml", help="the gimbal profile to update")
        s.set_defaults(func={"gimbal": run_gimbal, "latency": run_latency, "pid": run_pid}[name])

    s = steps.add_parser("int8", help="record the exact network inputs the tracker builds -> .npz for quantize --calib")
    s.add_argument("--model", required=True, metavar="M.onnx", help="the fp32 model whose inputs to record")
    s.add_argument("--source", required=True, metavar="SRC", help="camera, video, or annotated sequence folder")
    s.add_argument("--init", metavar="x,y,w,h", help="target box (default: the folder's first ground-truth box)")
    s.add_argument("--every", type=int, default=5, help="keep every N-th frame's inputs (default 5)")
    s.add_argument("--max-samples", type=int, default=500, help="stop after N recorded samples (default 500)")
    s.add_argument("--max-frames", type=int, default=0,
                   help="stop after N frames (live sources; default 0: until the source ends or Ctrl-C)")
    s.add_argument("--output", "-o", required=True, metavar="calib.npz", help="where to write the recorded inputs")
    s.set_defaults(func=run_int8)


def run_intrinsics(args) -> int:
    from calib.intrinsics import (
        CharucoDetector,
        calibrate,
        images_from_folder,
        images_from_source,
        parse_board,
        write_result,
    )

    cols, rows = parse_board(args.board)
    detector = (CharucoDetector(cols, rows, args.square, args.marker * args.square, args.dictionary)
                if args.charuco else None)
    images = images_from_folder(args.images) if args.images else images_from_source(args.source, args.views, args.every)
    result = calibrate(images, cols, rows, args.square, fisheye=args.fisheye, min_views=args.min_views,
                       detector=detector)
    write_result(result, args.output, args.sensor_mode)
    used = sum(v.used for v in result.views)
    K = result.K
    print(f"wrote {args.output}: {result.model}, {result.image_size[0]}x{result.image_size[1]}, fx {K[0, 0]:.1f} "
          f"fy {K[1, 1]:.1f} cx {K[0, 2]:.1f} cy {K[1, 2]:.1f}, RMS {result.rms_px:.3f} px from {used} views "
          f"({len(result.views) - used} rejected)")
    if result.rms_px > 0.5:
        print(f"warning: RMS {result.rms_px:.2f} px is above 0.5 px", file=sys.stderr)
    return 0


def _size(text: str):
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        w = h = 0
    if w < 1 or h < 1:
        raise ConfigError(f"--size must be WxH (pixels, > 0), got {text!r}")
    return w, h


def run_pixel_to_angle(args) -> int:
    from edge.control.camera_model import CameraModel

    width, height = _size(args.size)
    cam = (CameraModel.from_calibration_file(args.calibration, width, height) if args.calibration
           else CameraModel.from_fov(width, height, args.hfov, args.vfov))
    for text in args.pixel:
        try:
            x, y = (float(v) for v in text.split(","))
        except ValueError:
            raise ConfigError(f"--pixel must be x,y, got {text!r}") from None
        # Outside the frame the lens model is extrapolated: an angle no camera pixel can give.
        if not (0 <= x <= width and 0 <= y <= height):
            raise ConfigError(f"--pixel {text} lies outside the {width}x{height} image (--size)")
        yaw, pitch = cam.angles_deg(x, y)
        print(f"pixel ({x:g}, {y:g}) -> yaw {yaw:+.3f} deg, pitch {pitch:+.3f} deg")
    return 0


def _pair(text: str, kind=float):
    try:
        a, b = (kind(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"expected two comma-separated values, got {text!r}") from None
    return a, b


@contextlib.contextmanager
def _probe(args, check):
    """A probe on the simulated head (``--sim``) or on the configured device (``--config``).

    Everything opened for it (camera grabber, outputs) is closed when the block ends, also when
    no frame arrives or the target cannot be picked. ``check()`` (StopSignals.check) is called
    after each start-up step and by the probe before each command and frame, so a stop signal ends
    the block there, and closing the outputs stops the head.
    """
    if args.sim:
        from calib.probe import SimProbe
        from edge.sim.run import OracleTracker
        from edge.sim.world import SimConfig, World

        gains, signs = _pair(args.sim_gains), _pair(args.sim_signs, int)
        world = World(SimConfig(path="still", delay_s=args.sim_delay, yaw_gain=gains[0], pitch_gain=gains[1],
                                yaw_sign=signs[0], pitch_sign=signs[1], roll_offset_deg=args.sim_roll))
        yield SimProbe(world, OracleTracker(world), check=check)
        return
    from calib.probe import DeviceProbe
    from edge.build import camera_model_for, tracker_for_config
    from edge.camera import open_source
    from edge.camera.grabber import LatestFrameGrabber
    from edge.config import load_config_file
    from edge.outputs import open_outputs
    from edge.runtime.service import wait_for_first_frame
    from edge.target import target_from_option

    cfg = load_config_file(args.config)
    cam = cfg.camera
    tracker = tracker_for_config(cfg)
    check()
    with contextlib.ExitStack() as opened:
        grabber = LatestFrameGrabber(lambda: open_source(cam.source, width=cam.width, height=cam.height,
                                                         fps=cam.fps)).start()
        opened.callback(grabber.stop)
        outputs = open_outputs(cfg.outputs, cfg.control)   # pymavlink's import has a bare except: check after
        for out in outputs:
            opened.callback(out.close)
        check()
        first = wait_for_first_frame(grabber, cam.start_timeout_s, check)
        if first is None:
            raise ConfigError(f"no frames from {cam.source} within {cam.start_timeout_s:g} s")
        h, w = first.image.shape[:2]
        init = target_from_option(args.init or "center:100x100", w, h, "--init")
        yield DeviceProbe(outputs, grabber, tracker, camera_model_for(cam, w, h), init, check=check)


def _measure_head(args, step: str, measure, summary) -> int:
    """Run ``measure(probe, rate_dps=...)`` on the head, write its profile keys under ``step`` and
    print ``summary(result)``. A stop signal (TERM, INT, HUP, QUIT: edge.runtime.signals) stops the
    head, writes nothing and exits 128 + its number (Ctrl-C: "interrupted", 130), as ``run`` does."""
    import signal

    from calib.profile import update_profile
    from edge.runtime.signals import Stopped, StopSignals

    try:
        with StopSignals() as signals, _probe(args, signals.check) as probe:
            result = measure(probe, rate_dps=args.rate)
    except Stopped:
        if signals.signum == signal.SIGINT:
            raise KeyboardInterrupt from None
        print(f"edge-track: stopped by {signals.name}: the head was told to stop, {args.profile} unchanged",
              file=sys.stderr)
        return signals.exit_status()
    update_profile(args.profile, result.profile(), step)
    print(f"wrote {args.profile}: {summary(result)}")
    return 0


def run_gimbal(args) -> int:
    from calib.gimbal import fit_gimbal

    return _measure_head(args, "gimbal", fit_gimbal, lambda fit: (
        f"pan {'inverted' if fit.invert_pan else 'normal'}, tilt "
        f"{'inverted' if fit.invert_tilt else 'normal'}, "
        f"rate gains {fit.rate_gain_pan:.3f} / {fit.rate_gain_tilt:.3f}, "
        f"camera roll {fit.roll_offset_deg:+.2f} deg (axes disagree by {fit.roll_disagreement_deg:.2f} deg)"))


run_gimbal.handles_stop_signals = True   # StopSignals: a signal during the imports is taken over


def run_latency(args) -> int:
    from calib.latency import measure_latency

    return _measure_head(args, "latency", measure_latency, lambda result: (
        f"latency {1000 * result.total_s:.0f} ms = capture-to-command "
        f"{1000 * result.capture_to_command_s:.0f} ms + command-to-motion {1000 * result.command_to_motion_s:.0f} ms "
        f"(trials {', '.join(f'{1000 * t:.0f}' for t in result.trials)} ms)"))


run_latency.handles_stop_signals = True   # StopSignals: a signal during the imports is taken over


def run_pid(args) -> int:
    from calib.pid import suggest_gains
    from calib.profile import update_profile
    from edge.config import load_config
    from edge.io.safe_yaml import read_yaml
    from edge.sim.run import OracleTracker, run_sim
    from edge.sim.world import SimConfig

    if not os.path.lexists(args.profile):
        raise ConfigError(f"{args.profile}: run 'calibrate gimbal' and 'calibrate latency' first")
    data = read_yaml(args.profile, "gimbal profile") or {}
    control = data.get("control", {}) if isinstance(data, dict) else None
    if not isinstance(control, dict):
        raise ConfigError(f"{args.profile} is not a gimbal profile (no 'control' mapping)")
    if "latency_s" not in control:
        raise ConfigError(f"{args.profile} has no latency_s: run 'calibrate latency' first")
    gain = math.sqrt(control.get("rate_gain_pan", 1.0) * control.get("rate_gain_tilt", 1.0))
    suggestion = suggest_gains(control["latency_s"])   # the profile's gains are compensated by the controller
    # Check in the simulator with the measured delay before writing anything.
    sim = SimConfig(delay_s=max(control["latency_s"] - 1 / 60, 0.0))
    scores = {}
    for name, gains in (("current", {}), ("suggested", suggestion.profile())):
        cfg = load_config({"control": {**{k: v for k, v in control.items() if k in ("latency_s",)}, **gains}})
        scores[name] = run_sim(sim, cfg, lambda world: OracleTracker(world), seconds=12.0)
    better = scores["suggested"].p95_error_deg <= scores["current"].p95_error_deg * 1.05
    print(f"measured head: delay {1000 * control['latency_s']:.0f} ms, gain {gain:.3f}; Ziegler-Nichols start kp "
          f"{suggestion.zn_kp:.2f}, ki {suggestion.zn_ki:.2f}; "
          f"suggested (reduced for the delay) kp {suggestion.kp:.2f}, "
          f"ki {suggestion.ki:.2f}")
    for name, rep in scores.items():
        print(f"  simulator, {name} gains: centring error mean {rep.mean_error_deg:.2f} deg, "
              f"p95 {rep.p95_error_deg:.2f} deg")
    if better:
        update_profile(args.profile, suggestion.profile(), "pid")
        print(f"wrote {args.profile}: kp {suggestion.kp:.3f}, ki {suggestion.ki:.3f}")
    else:
        print("the suggestion did not beat the current gains in the simulator: profile unchanged")
    return 0


def run_int8(args) -> int:
    import os

    from edge.camera import open_source
    from edge.sample import first_box_beside
    from edge.target import box_from_option
    from train.export.input_recorder import record, save

    if args.init:
        init = box_from_option(args.init)
    else:
        init = first_box_beside(args.source) if os.path.isdir(args.source) else None
    if init is None:
        raise ConfigError(f"--init x,y,w,h is required for {args.source}")
    source = open_source(args.source)

    def frames():
        for frame in source:
            if args.max_frames and frame.index >= args.max_frames:
                return
            yield frame.image

    try:
        arrays = record(frames(), init, args.model, every=args.every, max_samples=args.max_samples)
    finally:
        source.close()
    save(arrays, args.output)
    print(f"wrote {args.output}: {len(arrays['search'])} samples of "
          + ", ".join(f"{k} {tuple(v.shape[1:])}" for k, v in arrays.items()))
    return 0

