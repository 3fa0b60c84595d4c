"""Build the loop from a DeviceConfig and run it until a stop signal (TERM, INT, HUP, QUIT) or the
source ends.

Order matters: every check first (edge.runtime.preflight, shared with ``config check``: the model
loaded and warmed up, the source, the target, the paths, the console's address and token file),
then what else can refuse the start (the devices' locks, one instance per device; the console's
token and port, bound now), the camera, the track log and the recording (removed again when a
later step fails, so a refused start leaves no file), and only then the outputs, so a refused
start never sent anything to a head; then the web console, READY=1; WATCHDOG=1 only while frames
are processed; STOPPING=1 and a stop to every output on exit.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import threading
import time

from edge.camera.grabber import LatestFrameGrabber
from edge.config import DeviceConfig
from edge.errors import ConfigError, SourceError
from edge.io.sdnotify import SystemdNotifier
from edge.outputs import open_outputs
from edge.overlay import draw
from edge.runtime.instance_lock import hold_device_locks
from edge.runtime.loop import TrackingLoop
from edge.runtime.preflight import check_stream, open_camera, preflight
from edge.runtime.signals import Stopped, StopSignals
from edge.runtime.telemetry import TrackLog
from edge.video_out import VideoOut

log = logging.getLogger("edge.runtime")


def build_recorder(path: str, fps: float, size: tuple[int, int]):
    """``record(image_rgb, result)`` writing annotated frames to ``path`` (None when ``path`` is
    empty), with ``record.close()``. The file is opened here at the configured ``size`` (width,
    height), so a path OpenCV cannot write is a one-line SourceError at start, not a recording
    that silently holds nothing; it is reopened once if the first frame has another size."""
    if not path:
        return None
    import cv2

    state = {"video": VideoOut(path, fps, size), "size": tuple(size), "frames": 0}

    def record(image, result) -> None:
        frame = draw(image, result)
        got = frame.shape[1::-1]
        if got != state["size"]:
            if state["frames"] == 0:
                state["video"].close()
                state["video"], state["size"] = VideoOut(path, fps, got), got
            else:
                frame = cv2.resize(frame, state["size"])
        state["video"].write(frame)
        state["frames"] += 1

    record.close = lambda: state["video"].close()
    return record


def build_viewer(stop: threading.Event):
    """A live window when there is a display and an OpenCV with a GUI; None (headless) otherwise."""
    import cv2

    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        log.info("no display: running headless")
        return None
    try:
        cv2.namedWindow("edge-track", cv2.WINDOW_NORMAL)
    except cv2.error:
        log.info("this OpenCV has no GUI (opencv-python-headless): running headless")
        return None
    def show(image, result) -> None:
        cv2.imshow("edge-track", draw(image, result))
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            stop.set()

    show.close = cv2.destroyAllWindows
    return show


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


def _created_file(path: str, undo: list) -> None:
    """Start-up is about to create ``path``: if a later step fails, remove it again (a refused
    start leaves no empty track log nor a recording with no frames)."""
    if not os.path.exists(path):
        undo.append(lambda: os.path.exists(path) and os.remove(path))


def _run(cfg: DeviceConfig, signals: StopSignals, environ, show: bool, target_source: str) -> None:
    notifier = SystemdNotifier(environ)
    stop = signals.stop
    cam = cfg.camera
    tel = cfg.telemetry
    undo = []   # what start-up opened, closed again (last first) when a later step fails
    # After every start-up step: a signal only sets ``stop``, so a step that swallows exceptions
    # (or blocks in C) cannot lose it, and a stop during start-up never reaches READY=1.
    checkpoint = signals.check
    try:
        checked = preflight(cfg, checkpoint)
        tracker, initial, live = checked.tracker, checked.initial, checked.live
        if initial is not None:
            initial = dataclasses.replace(initial, source=target_source)
        size, camera_model = checked.frame_size, checked.camera_model
        # Everything else that can refuse the start, before anything is opened: the devices'
        # locks (a second instance on this config), then the console's port.
        locks = hold_device_locks(cfg)
        undo.append(locks.release)
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
            undo.append(listener.server_close)
        checkpoint()
        grabber = LatestFrameGrabber(lambda: open_camera(cam), reconnect_initial_s=cam.reconnect_initial_s,
                                     reconnect_max_s=cam.reconnect_max_s,
                                     reconnect=live, replay=cam.loop_file and not live,
                                     pace_fps=None if live else cam.fps).start()
        undo.append(grabber.stop)   # a grabber thread still inside OpenCV at exit aborts the process
        if live:
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
        # The files (removed again if a later step fails), then the outputs: nothing after them can
        # refuse the start, so a head is only ever opened by a start that goes on.
        track_log = None
        if tel.track_log:
            _created_file(tel.track_log, undo)
            track_log = TrackLog(tel.track_log, int(tel.track_log_max_mb * 2**20), tel.track_log_keep)
            undo.append(track_log.close)
        if tel.record:
            _created_file(tel.record, undo)
        recorder = build_recorder(tel.record, cam.fps, size)
        if recorder is not None:
            undo.append(recorder.close)
        checkpoint()
        outputs = open_outputs(cfg.outputs, cfg.control)
        undo.extend(out.close for out in outputs)
        checkpoint()
        publisher = console = None
        if cfg.web.enabled:
            from edge.web.publisher import FramePublisher

            publisher = FramePublisher(cfg.web.max_fps, cfg.web.jpeg_quality, cfg.web.max_width)
            undo.append(publisher.close)
        viewer = build_viewer(stop) if show else None
        if viewer is not None:
            undo.append(viewer.close)
        loop = TrackingLoop(tracker=tracker, grabber=grabber, outputs=outputs, config=cfg, notifier=notifier,
                            track_log=track_log, recorder=recorder, initial_target=initial, publisher=publisher,
                            camera_model=camera_model, viewer=viewer)
        if cfg.web.enabled:
            from edge.web.server import ConsoleServer

            try:
                console = ConsoleServer(loop, publisher, cfg, bind=cfg.web.bind, port=cfg.web.port,
                                        token=token, state_dir=cfg.web.state_dir or None, httpd=listener).start()
            except OSError as exc:
                raise ConfigError(f"web console on {cfg.web.bind}:{cfg.web.port}: {exc.strerror or exc}") from None
            log.info("web console: %s", console.url)
            undo.append(console.close)
        checkpoint()
    except BaseException as exc:   # a config error, or a stop during start-up: nothing left open
        for close in reversed(undo):
            try:
                close()
            except Exception:
                pass
        notifier.close()
        if isinstance(exc, Stopped):
            log.info("stopped during start-up, before READY")
            return
        raise
    model = cfg.model.path or "the default tracker"
    notifier.ready(f"tracking with {tracker.label}, {tracker.meta.precision}, {tracker.engine.name} ({model})")
    log.info("ready: %s, %s, %s (%s), source %s, %d output(s)", tracker.label, tracker.meta.precision,
             tracker.engine.name, model, cam.source, len(outputs))
    try:
        loop.run(signals)   # polled: a signal sets only a flag (edge.runtime.signals)
    finally:
        if console is not None:
            console.close()
        if publisher is not None:
            publisher.close()
        if recorder is not None and not loop.telemetry_stuck:   # not under a thread still writing it
            recorder.close()
        if viewer is not None:
            viewer.close()
        notifier.close()
    locks.release()
    log.info("stopped after %d frames", loop.stats.frames)
    if grabber.failure:   # a non-zero exit with the reason, so Restart=on-failure starts it again
        raise SourceError(f"camera.source {cam.source} ended unexpectedly after {loop.stats.frames} frames: "
                          f"{grabber.failure}")
