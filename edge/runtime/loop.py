"""The real-time loop: newest frame -> tracker -> pixel error -> controller -> every output.

States: IDLE (no target), TRACKING, LOST. On LOST the gimbal is told to hold and the search
region widens step by step until the score recovers; with no frames for ``frame_timeout_s`` the
outputs are stopped and the watchdog is no longer fed. Every exit path stops the outputs.
Targets come from the config (a box or a centre ROI), or at run time from any output that can
receive commands (MAVLink track commands, the serial link) and from ``request()`` (thread-safe).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass, field

from edge.build import camera_model_for
from edge.control.camera_model import CameraModel
from edge.control.command import GimbalCommand
from edge.control.controller import GimbalController
from edge.outputs.base import ControlUpdate
from edge.runtime.telemetry import status_line
from edge.runtime.telemetry_worker import TelemetryWorker
from edge.target import TargetRequest, fit_target
from edge.trackers.lost_search import LostSearch, LostSearchSettings
from edge.trackers.state import TrackState

log = logging.getLogger("edge.runtime")

TRACK_LOG_QUEUE = 256     # lines waiting for the track log's thread (8 s at 30 fps) before they are dropped
RECORDING_QUEUE = 4       # frames waiting to be recorded: a few, each is a whole image
TELEMETRY_CLOSE_S = 2.0   # at exit, how long the telemetry threads get to write what they hold


@dataclass
class LoopStats:
    frames: int = 0
    lost_frames: int = 0
    fps: float = 0.0
    frame_age_ms: float = 0.0
    latency_ms: float = 0.0
    state: TrackState = TrackState.IDLE
    score: float = 0.0
    box: tuple | None = None
    command: GimbalCommand = field(default_factory=GimbalCommand.stop)
    outage: bool = False           # no frame for camera.frame_timeout_s (camera gone, folder gone)
    counters: dict = field(default_factory=dict)   # {"camera": {...}, <output name>: {...}}


class TrackingLoop:
    def __init__(self, *, tracker, grabber, outputs, config, camera_model: CameraModel | None = None,
                 notifier=None, track_log=None, recorder=None, clock=time.monotonic,
                 initial_target: TargetRequest | None = None, publisher=None, viewer=None) -> None:
        # The one per-frame step (the LOST search included) that track, eval and the simulator run too.
        self.tracker = tracker if isinstance(tracker, LostSearch) else LostSearch(
            tracker, LostSearchSettings(config.tracking.widen_step, config.tracking.max_search_factor))
        self.grabber = grabber
        self.outputs = list(outputs)
        self.cfg = config
        self.camera_model = camera_model
        self.controller = GimbalController(config.control)
        self.notifier = notifier
        self.track_log = track_log
        self.recorder = recorder
        self.publisher = publisher
        self.viewer = viewer   # a desk window: on this thread (GUI toolkits want one thread), never the service
        self.dry_run = False
        self.clock = clock
        self.stats = LoopStats()
        # One pending target request, the newest: a flood of selects costs one init, not one each.
        self._pending: TargetRequest | None = initial_target
        self._pending_lock = threading.Lock()
        self.superseded = 0               # requests replaced by a newer one before a frame took them
        self._init_frame = -2             # stats.frames at the last init: the next waits for a tracked frame
        self._state = TrackState.IDLE
        self._seq = 0
        self._last_frame_t = clock()
        self._last_update_t = None
        self._stale = False
        self._last_status_t = clock()
        self._dry = False   # the dry run as this step applies it: set_dry_run takes effect at a step's start
        self._stopped = False
        self._lock = threading.Lock()
        self._telemetry_failed: set[str] = set()
        self._workers = {}                # sink name -> TelemetryWorker, made on first use
        self.telemetry_stuck = False      # a telemetry thread did not finish at shutdown (hung disk)

    # -- control from outside ---------------------------------------------------------------
    def request(self, req: TargetRequest) -> None:
        # Stamped: a target picked on a frame seen before an outage means nothing minutes later.
        self._offer(dataclasses.replace(req, queued_at=self.clock()))

    def _offer(self, req: TargetRequest) -> None:
        """Only the newest request matters (a stop, a re-centre or a target): it replaces any that
        no frame has taken yet, which is counted (``superseded``), never queued."""
        with self._pending_lock:
            if self._pending is not None:
                self.superseded += 1
            self._pending = req

    def _take_request(self) -> TargetRequest | None:
        """The pending request, or None. A new target waits until a frame was tracked since the last
        init (at most one init every other frame, however many clients ask); a stop never waits."""
        with self._pending_lock:
            req = self._pending
            if req is None or (not req.is_stop and self.stats.frames < self._init_frame + 2):
                return None
            self._pending = None
            return req

    @property
    def state(self) -> TrackState:
        return self._state

    def set_dry_run(self, on: bool) -> None:
        """Compute commands but send no motion: from the next step the outputs are told to hold
        (once), get heartbeats instead of commands, and a re-centre is not passed on."""
        self.dry_run = bool(on)

    # -- the loop ----------------------------------------------------------------------------
    def run(self, stop) -> None:
        """Step until the source ends or ``stop.is_set()`` (a threading.Event, or StopSignals)."""
        try:
            while not stop.is_set():
                if not self.step():
                    break
        finally:
            self.shutdown()

    def step(self) -> bool:
        """One iteration; False when a finite source has ended."""
        frame = self.grabber.get(timeout=0.1)
        now = self.clock()
        now_ms = int(now * 1000)
        self._apply_dry_run()
        if frame is None:
            if getattr(self.grabber, "finished", False):
                return False
            gap = now - self._last_frame_t
            if gap > self.cfg.camera.frame_timeout_s and not self._stale:
                self._stale = True
                self.stats.outage = True
                log.warning("no frame for %.1f s: stopping the gimbal", gap)
                if self._state == TrackState.TRACKING:
                    self._set_state(TrackState.LOST)
                self._stop_outputs()
            if gap > 0:   # a frame overdue by gap s: the rate is at most 1/gap, not the last one seen
                self.stats.fps = min(self.stats.fps, 1.0 / gap)
            for out in self.outputs:
                self._guard(out, lambda o=out: o.heartbeat(now_ms, self._heartbeat_state()))
                self._collect_requests(out)
            if self._stale:
                self._status(now)
            return True
        self.stats.frame_age_ms = (time.monotonic_ns() - frame.t_capture_ns) / 1e6   # waiting to be taken
        if self._stale:
            log.info("frames are back")
        self._stale = False
        self.stats.outage = False
        self._last_frame_t = now
        height, width = frame.image.shape[:2]
        if self.camera_model is None or (self.camera_model.width, self.camera_model.height) != (width, height):
            self.camera_model = camera_model_for(self.cfg.camera, width, height)
        for out in self.outputs:
            self._collect_requests(out)
        started = self._apply_requests(frame, width, height)

        if self._state == TrackState.IDLE or started:   # the frame a target was picked on is its template
            now_state = self._heartbeat_state()
            for out in self.outputs:
                self._guard(out, lambda o=out: o.heartbeat(now_ms, now_state))
            # The track log's line for that frame has the box it was given (nothing moves yet).
            picked = self._picked if started else None
            self._frame_done(now, frame, picked, picked.score if picked else 0.0, GimbalCommand.stop(),
                             time.monotonic_ns())
            return True

        result = self.tracker.update(frame.image)
        if self._last_update_t is None:
            dt = 1.0 / max(self.cfg.camera.fps, 1.0)
        else:
            dt = min(max(now - self._last_update_t, 1e-3), 0.5)
        self._last_update_t = now
        if result.state is not TrackState.TRACKING:     # only a tracked target moves the head
            if self._state != TrackState.LOST:
                log.warning("target lost (score %.2f): holding the gimbal%s", result.score,
                            ", widening the search" if self.tracker.widens else "")
                self._set_state(TrackState.LOST)
            command = self.controller.stop()
            self.stats.lost_frames += 1
        else:
            if self._state == TrackState.LOST:
                log.info("target re-acquired (score %.2f)", result.score)
            self._set_state(TrackState.TRACKING)
            x, y, w, h = result.box
            yaw, pitch = self.camera_model.angles_deg(x + w / 2, y + h / 2)
            command = self.controller.update(yaw, pitch, dt)
        update = ControlUpdate(seq=self._seq, t_ms=now_ms, state=self._state, box=result.box,
                               score=result.score, frame_size=(width, height), command=command)
        for out in self.outputs:
            if self._dry:   # no command leaves, but links stay alive (the box stream's heartbeat)
                self._guard(out, lambda o=out: o.heartbeat(now_ms, self._heartbeat_state()))
            else:
                self._guard(out, lambda o=out: o.send(update))
        self._frame_done(now, frame, result, result.score, command, time.monotonic_ns())
        return True

    # -- helpers -------------------------------------------------------------------------------
    def _collect_requests(self, out) -> None:
        poll = getattr(out, "poll", None)
        if poll is None:
            return
        try:
            got = poll()
        except Exception as exc:
            log.warning("%s: polling commands failed: %s", getattr(out, "name", out), exc)
            return
        for req in got or []:
            if req.kind == "stop":
                self._offer(TargetRequest(source=out.name))
            else:
                self.request(TargetRequest(remote=req, source=out.name))

    def _apply_requests(self, frame, width: int, height: int) -> bool:
        """Apply the pending target request (one at most); True if tracking (re)started on this frame."""
        req = self._take_request()
        if req is None:
            return False
        if req.is_stop:
            move_home = req.recenter and not self._dry   # a re-centre is motion
            log.info("tracking stopped (%s)%s", req.source, ", re-centring" if move_home else
                     ", not re-centring in a dry run" if req.recenter else "")
            self._set_state(TrackState.IDLE)
            self._stop_outputs()
            if move_home:
                for out in self.outputs:
                    recenter = getattr(out, "recenter", None)
                    if recenter is not None:
                        self._guard(out, recenter)
            return False
        age = self.clock() - req.queued_at if req.queued_at is not None else 0.0
        if age > self.cfg.camera.frame_timeout_s:   # asked for during an outage: the scene has moved on
            log.info("ignored a stale target request from %s (queued %.1f s ago, before the frames stopped)",
                     req.source, age)
            return False
        try:
            box = req.box_in(width, height)   # the request as it was parsed when made: no text here
            # Whatever the route (web page, serial link, ground station, config), the box is
            # checked against this frame before anything moves.
            box = fit_target(box, width, height)
            self._picked = self.tracker.init(frame.image, box)
        except Exception as exc:   # a bad target never stops the loop nor changes what it does
            log.error("ignored target request from %s: %s", req.source, " ".join(str(exc).split()))
            return False
        self.controller.stop()
        self._last_update_t = None
        self._init_frame = self.stats.frames
        log.info("tracking target %s (%s)", tuple(round(v, 1) for v in box), req.source)
        self._set_state(TrackState.TRACKING)
        return True

    def _apply_dry_run(self) -> None:
        """A dry run starts with every output told to hold, before anything else goes out: with
        or without frames (an output may still hold a moving command it would send again)."""
        dry = self.dry_run   # read once: the web thread may flip it between two reads
        if dry and not self._dry:
            log.info("dry run: outputs hold, commands are computed but not sent")
            self._stop_outputs()
        elif self._dry and not dry:
            # The controller kept integrating as if the head had moved; it was held. Start again
            # from a stopped head, so the first live command ramps up within the acceleration limit.
            log.info("dry run over: commands are sent again")
            self.controller.stop()
            self._last_update_t = None
        self._dry = dry

    def _heartbeat_state(self) -> TrackState:
        """The state heartbeats carry: IDLE in dry run, since receivers act on TRACKING
        (docs/serial-box-protocol.md) and a dry run must move nothing downstream."""
        return TrackState.IDLE if self._dry else self._state

    def _set_state(self, state: TrackState) -> None:
        self._state = state
        self.stats.state = state

    def _guard(self, out, fn) -> None:
        """An output failing must not stop the others, nor the loop."""
        try:
            fn()
        except Exception as exc:
            log.error("output %s failed: %s", getattr(out, "name", out), exc)

    def _stop_outputs(self) -> None:
        self.controller.stop()
        for out in self.outputs:
            self._guard(out, out.stop)

    def _frame_done(self, now: float, frame, result, score: float, command: GimbalCommand, written_ns: int) -> None:
        """Bookkeeping after the outputs had this frame's command (written at ``written_ns``)."""
        st = self.stats
        st.frames += 1
        dt = now - getattr(self, "_prev_done", now)
        self._prev_done = now
        if dt > 0:
            st.fps = 1.0 / dt if st.fps == 0 else 0.9 * st.fps + 0.1 / dt
        st.latency_ms = (written_ns - frame.t_capture_ns) / 1e6    # capture -> command written
        st.score = score
        st.box = result.box if result is not None else None
        st.command = command
        self._seq += 1
        if self.track_log is not None:
            line = {   # built here, from this frame's values; written on the track log's thread
                "t_capture_ns": frame.t_capture_ns, "frame": frame.index, "frame_age_ms": round(st.frame_age_ms, 2),
                "latency_ms": round(st.latency_ms, 2), "state": self._state, "score": round(score, 4),
                "box": [round(v, 2) for v in st.box] if st.box else None,
                "command": {"yaw_dps": round(command.yaw_rate_dps, 3), "pitch_dps": round(command.pitch_rate_dps, 3),
                            "active": command.active},
            }
            self._off_loop("track log", TRACK_LOG_QUEUE, lambda: self.track_log.write(line))
        if self.recorder is not None:
            image = frame.image
            self._off_loop("recording", RECORDING_QUEUE, lambda: self.recorder(image, result))
        if self.publisher is not None:
            self._telemetry("web view", lambda: self.publisher.offer(frame.image, result))
        if self.viewer is not None:
            self._telemetry("window", lambda: self.viewer(frame.image, result))
        if self.notifier is not None:
            self.notifier.watchdog()
        self._status(now)

    def _off_loop(self, name: str, max_jobs: int, fn) -> None:
        """Hand ``fn`` to the sink's own thread (edge.runtime.telemetry_worker): a file that blocks
        or fails costs its lines, dropped and counted, never the loop's time."""
        worker = self._workers.get(name)
        if worker is None:
            worker = self._workers[name] = TelemetryWorker(name, max_jobs)
        worker.submit(lambda: self._telemetry(name, fn))

    def _telemetry(self, name: str, fn) -> None:
        """Telemetry never stops tracking: a failing sink is reported once and skipped."""
        try:
            fn()
        except Exception as exc:
            if name not in self._telemetry_failed:
                self._telemetry_failed.add(name)
                log.warning("%s failed (%s); tracking goes on", name, " ".join(str(exc).split()))

    def counters(self) -> dict:
        """Link health: the camera's reconnects and drops, and each output's ``counters()``."""
        grabber = self.grabber
        counts = {"camera": {"reconnects": int(getattr(grabber, "reconnects", 0)),
                             "drops": int(getattr(grabber, "dropped", 0))}}
        if self._workers:   # lines and frames the files did not get (queue full, disk full)
            counts["telemetry"] = {"dropped": sum(w.dropped for w in list(self._workers.values()))
                                   + int(getattr(self.track_log, "dropped", 0))}
        if self.superseded:
            counts["requests"] = {"superseded": self.superseded}
        for out in self.outputs:
            report = getattr(out, "counters", None)
            if report is not None:
                try:
                    counts[getattr(out, "name", type(out).__name__)] = dict(report())
                except Exception:
                    pass
        return counts

    def _status(self, now: float) -> None:
        """The status line (log and systemd STATUS) every ``status_interval_s``."""
        if now - self._last_status_t < self.cfg.telemetry.status_interval_s:
            return
        self._last_status_t = now
        self.stats.counters = self.counters()
        text = status_line(self.stats, now - self._last_frame_t)
        log.info(text)
        if self.notifier is not None:
            self.notifier.status(text)

    def shutdown(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        if self.notifier is not None:
            self.notifier.stopping()
        self._stop_outputs()
        for out in self.outputs:
            self._guard(out, out.close)
        try:
            self.grabber.stop()
        except Exception:
            pass
        for name, worker in list(self._workers.items()):   # after the outputs: a hung disk waits its turn
            if not worker.close(TELEMETRY_CLOSE_S):
                self.telemetry_stuck = True
                log.warning("%s: its file does not answer (a hung disk?); left behind unclosed", name)
        if self.track_log is not None and not self.telemetry_stuck:
            self._telemetry("track log", self.track_log.close)

