"""Build the loop from a DeviceConfig and run it until a stop signal (TERM, INT, HUP, QUIT) or the
source ends.

Order matters: every check first (edge.runtime.preflight, shared with ``config check``: the model
loaded and warmed up, the source, the target, the paths, the console's address and token file),
then what else can refuse the start (the devices' locks, one instance per device; the console's
token and port, bound now), the camera, then the sinks (edge.runtime.sinks: the track log and the
recording, removed again when a later step fails, so a refused start leaves no file, and only
then the outputs, so a refused start never sent anything to a head); then the web console,
READY=1; WATCHDOG=1 only while frames are processed; STOPPING=1 and a stop to every output on
exit. Each step's opening is registered with an ExitStack, so a refused start closes it again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import signal
import threading
import time
from dataclasses import dataclass

from edge.camera.grabber import LatestFrameGrabber
from edge.config import DeviceConfig
from edge.errors import ConfigError, SourceError
from edge.io.sdnotify import SystemdNotifier
from edge.runtime.instance_lock import hold_device_locks
from edge.runtime.loop import TrackingLoop
from edge.runtime.preflight import check_stream, open_camera, preflight
from edge.runtime.signals import Stopped, StopSignals
from edge.runtime.sinks import Sinks, open_sinks, quietly

log = logging.getLogger("edge.runtime")


# A wait longer than this says so while it waits, so a start-up that looks hung shows what it waits for.
PROGRESS_EVERY_S = 5.0


def wait_for_first_frame(grabber, timeout_s: float, checkpoint, progress=None, clock=time.monotonic):
    """The camera's first frame, or None after ``timeout_s``; ``checkpoint()`` is called at least
    every 0.1 s meanwhile, so a stop signal ends the wait. ``progress(waited_s)`` is called every
    ``PROGRESS_EVERY_S`` seconds of waiting."""
    start = clock()
    deadline, report_at = start + timeout_s, start + PROGRESS_EVERY_S
    while True:
        checkpoint()
        now = clock()
        left = deadline - now
        if left <= 0:
            return None
        if progress is not None and now >= report_at:
            progress(now - start)
            report_at += PROGRESS_EVERY_S
        first = grabber.get(timeout=min(left, 0.1))
        if first is not None:
            return first


def run_device(cfg: DeviceConfig, *, stop: threading.Event | None = None, environ=None, show: bool = False,
               target_source: str = "config") -> int:
    """Run the loop until the source ends, ``stop`` is set or a stop signal comes (see
    edge.runtime.signals); every output is stopped first. Returns the exit status: 0, or 128 + the
    signal's number; SIGINT raises KeyboardInterrupt once all is stopped, as Ctrl-C does in every
    command (the command line reports it as "interrupted", exit 130). ``target_source`` names where
    ``tracking.init`` came from in the log (the desk's ``--init`` or ``--roi``)."""
    with StopSignals(stop) as signals:
        _run(cfg, signals, environ, show, target_source)
    if signals.signum is not None:
        log.info("stopped by %s", signals.name)
    if signals.signum == signal.SIGINT:
        raise KeyboardInterrupt
    return signals.exit_status()


@dataclass
class Started:
    """What start-up opened, for the run to go on with."""

    tracker: object       # as preflight loaded it (the loop wraps it in its LOST search)
    loop: TrackingLoop
    sinks: Sinks
    grabber: LatestFrameGrabber
    locks: object
    console: object = None


def _run(cfg: DeviceConfig, signals: StopSignals, environ, show: bool, target_source: str) -> None:
    notifier = SystemdNotifier(environ)
    with contextlib.ExitStack() as running:      # what the run closes at its end, last first
        running.callback(notifier.close)
        with contextlib.ExitStack() as starting:  # what start-up opened, closed again if a later step fails
            try:
                started = _start(cfg, signals, notifier, show, target_source, starting)
            except Stopped:
                log.info("stopped during start-up, before READY")
                return
            starting.pop_all()   # started: the loop closes the outputs, the camera and the track log
        loop, sinks = started.loop, started.sinks
        # From here the loop owns the outputs: should anything before loop.run fail, they still stop
        # (shutdown runs once; loop.run's own end calls it first).
        running.callback(loop.shutdown)
        if sinks.viewer is not None:
            running.callback(quietly, sinks.viewer.close)
        if sinks.recorder is not None:   # not under a thread still writing it
            running.callback(lambda: loop.telemetry_stuck or quietly(sinks.recorder.close))
        if sinks.publisher is not None:
            running.callback(quietly, sinks.publisher.close)
        if started.console is not None:
            running.callback(quietly, started.console.close)
        tracker, model = started.tracker, cfg.model.path or "the default tracker"
        info = tracker.info
        notifier.ready(f"tracking with {info.label}, {info.precision}, {info.engine} ({model})")
        log.info("ready: %s, %s, %s (%s), source %s, %d output(s)", info.label, info.precision,
                 info.engine, model, cfg.camera.source, len(sinks.outputs))
        loop.run(signals)   # polled: a signal sets only a flag (edge.runtime.signals)
    started.locks.release()
    log.info("stopped after %d frames", loop.stats.frames)
    if started.grabber.failure:   # a non-zero exit with the reason, so Restart=on-failure starts it again
        raise SourceError(f"camera.source {cfg.camera.source} ended unexpectedly after {loop.stats.frames} frames: "
                          f"{started.grabber.failure}")


def _start(cfg: DeviceConfig, signals: StopSignals, notifier, show: bool, target_source: str,
           stack: contextlib.ExitStack) -> Started:
    """Every start-up step, in order, each thing it opens registered with ``stack``. After every
    step a checkpoint: a signal only sets ``stop``, so a step that swallows exceptions (or blocks
    in C) cannot lose it, and a stop during start-up never reaches READY=1."""
    cam, checkpoint = cfg.camera, signals.check
    checked = preflight(cfg, checkpoint)
    initial, size, camera_model = checked.initial, checked.frame_size, checked.camera_model
    if initial is not None:
        initial = dataclasses.replace(initial, source=target_source)
    # Everything else that can refuse the start, before anything is opened: the devices' locks (a
    # second instance on this config), then the console's port.
    locks = hold_device_locks(cfg)
    stack.callback(quietly, locks.release)
    listener = token = None
    if cfg.web.enabled:
        from edge.web.cross_site import LOOPBACK_NAMES
        from edge.web.server import bind_console
        from edge.web.token_file import default_state_dir, load_or_create_token

        if cfg.web.bind not in LOOPBACK_NAMES:   # the token beyond loopback: read or made now, not later
            token = load_or_create_token(cfg.web.state_dir or default_state_dir())
        try:
            listener = bind_console(cfg.web.bind, cfg.web.port)
        except OSError as exc:
            raise ConfigError(f"web console cannot listen on {cfg.web.bind}:{cfg.web.port}: "
                              f"{exc.strerror or exc}") from None
        stack.callback(quietly, listener.server_close)
    checkpoint()
    grabber = LatestFrameGrabber(lambda: open_camera(cam), reconnect_initial_s=cam.reconnect_initial_s,
                                 reconnect_max_s=cam.reconnect_max_s,
                                 reconnect=checked.live, replay=cam.loop_file and not checked.live,
                                 pace_fps=None if checked.live else cam.fps).start()
    stack.callback(quietly, grabber.stop)   # a grabber thread still inside OpenCV at exit aborts the process
    if checked.live:
        # A USB camera may appear a few seconds after boot: wait for it (the grabber retries).
        def waiting(waited_s: float) -> None:
            why = f" ({grabber.last_error})" if grabber.last_error else ""
            log.info("waiting for camera %s: %.0f s of %g s%s", cam.source, waited_s, cam.start_timeout_s, why)

        first = wait_for_first_frame(grabber, cam.start_timeout_s, checkpoint, progress=waiting)
        if first is None:
            raise SourceError(f"camera {cam.source} gave no frame within {cam.start_timeout_s:g} s"
                              + (f" ({grabber.last_error})" if grabber.last_error else ""))
        size = first.image.shape[1], first.image.shape[0]
        camera_model = check_stream(cam, initial, *size)
    checkpoint()
    sinks = open_sinks(cfg, size, show=show, stop=signals.stop, checkpoint=checkpoint, stack=stack)
    loop = TrackingLoop(tracker=checked.tracker, grabber=grabber, config=cfg, notifier=notifier,
                        initial_target=initial, camera_model=camera_model, **sinks.loop_args())
    console = None
    if cfg.web.enabled:
        from edge.web.server import ConsoleServer

        try:
            console = ConsoleServer(loop, sinks.publisher, cfg, bind=cfg.web.bind, port=cfg.web.port, token=token,
                                    state_dir=cfg.web.state_dir or None, httpd=listener).start()
        except OSError as exc:
            raise ConfigError(f"web console on {cfg.web.bind}:{cfg.web.port}: {exc.strerror or exc}") from None
        log.info("web console: %s", console.url)
        stack.callback(quietly, console.close)
    checkpoint()
    return Started(checked.tracker, loop, sinks, grabber, locks, console)
